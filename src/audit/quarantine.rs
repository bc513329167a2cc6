//! The quarantine: audit records the audit table refuses for what they are (a
//! `ValidationException` of their own, sent alone, more than a bounded number of times), set
//! aside so they stop holding back the records behind them. `quarantine.jsonl` in the spool
//! directory, one JSON object per line, appended and fsynced before the record is
//! acknowledged in the spool: a record leaves the spool only once it is durable here.
//!
//! Nothing reads the file back: an operator looks at the records, stores them by hand if
//! they can be (the `GlobalScaleAuditRecordQuarantined` runbook in
//! deploy/prometheus/README.md), and moves the file away.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{Value, json};

use super::spool::{RecordId, SpoolError};

/// The file's name in the spool directory.
pub const FILE: &str = "quarantine.jsonl";

/// One record set aside.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: RecordId,
    /// The record as spooled: an audit table item in DynamoDB JSON.
    pub record: Bytes,
    /// DynamoDB's refusal, as its error name and message.
    pub reason: String,
    /// Times it was sent alone and refused.
    pub tries: u32,
}

impl Entry {
    /// The entry's line: the record as it is when it is JSON, as text when it is not.
    fn line(&self, unix_ms: u64) -> Vec<u8> {
        let record = serde_json::from_slice::<Value>(&self.record)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.record).into()));
        let entry = json!({
            "QuarantinedAtMs": unix_ms,
            "SpoolRecordId": self.id.get(),
            "Reason": self.reason,
            "Tries": self.tries,
            "Record": record,
        });
        let mut line = entry.to_string().into_bytes();
        line.push(b'\n');
        line
    }
}

/// The quarantine file of the spool in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Appends `entries` to the quarantine in `dir` and fsyncs it (and the directory, the first
/// time, so the file's name survives a crash too). Blocking.
pub fn append(dir: &Path, entries: &[Entry], unix_ms: u64) -> Result<(), SpoolError> {
    let path = path(dir);
    let io = |source| SpoolError::io(&path, source);
    let created = !path.exists();
    let mut file: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io)?;
    let lines: Vec<u8> = entries.iter().flat_map(|e| e.line(unix_ms)).collect();
    file.write_all(&lines)
        .and_then(|()| file.sync_data())
        .map_err(io)?;
    if created {
        File::open(dir)
            .and_then(|handle| handle.sync_all())
            .map_err(|source| SpoolError::io(dir, source))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_appended_one_json_line_each() {
        let dir = tempfile::TempDir::new().unwrap();
        let entry = |n: u64, record: &'static [u8]| Entry {
            id: RecordId::from_raw(n),
            record: Bytes::from_static(record),
            reason: "ValidationException: key too long".into(),
            tries: 3,
        };
        append(dir.path(), &[entry(6, br#"{"ItemKey":{"S":"T#k"}}"#)], 1).unwrap();
        append(dir.path(), &[entry(9, b"not json\n")], 2).unwrap();
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["Record"]["ItemKey"]["S"], "T#k");
        assert_eq!(lines[0]["SpoolRecordId"], 6);
        assert_eq!(lines[0]["Tries"], 3);
        assert_eq!(lines[1]["Record"], "not json\n");
        assert_eq!(lines[1]["QuarantinedAtMs"], 2);
    }
}
