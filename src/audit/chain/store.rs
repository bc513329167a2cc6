//! The chain's assignments on disk, `chain.json` in the spool directory: the head and the
//! records linked but not yet stored. Written (temporary file, fsync, rename) before a
//! record first leaves with its place, so a record keeps its place across a restart; a
//! record stored in the audit table leaves the file with the next write.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::Assignments;
use crate::audit::intent;
use crate::audit::spool::{RecordId, SpoolError};

const FILE: &str = "chain.json";

#[derive(Debug)]
pub struct ChainStore {
    path: PathBuf,
    assignments: Mutex<Assignments>,
    /// The event id of each spool record linked, to forget it once it is stored.
    events: Mutex<HashMap<RecordId, String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ChainStore {
    /// Opens `dir`'s chain, or starts one. `spooled` are the event ids still in the spool:
    /// an assignment of any other was stored before the last stop.
    pub fn open(dir: &Path, spooled: &HashSet<String>) -> Result<ChainStore, SpoolError> {
        let path = dir.join(FILE);
        let mut assignments = match std::fs::read(&path) {
            Ok(text) => serde_json::from_slice(&text).map_err(|e| {
                SpoolError::io(
                    &path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Assignments::new(ulid::Ulid::new().to_string())
            }
            // An unreadable spool directory holds nothing to ship either: the sidecar starts
            // (serving reads, refusing audited writes until the spool can be written) on a
            // new chain.
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "audit chain unreadable: starting a new chain");
                Assignments::new(ulid::Ulid::new().to_string())
            }
        };
        assignments
            .linked
            .retain(|event, _| spooled.contains(event));
        Ok(ChainStore {
            path,
            assignments: Mutex::new(assignments),
            events: Mutex::new(HashMap::new()),
        })
    }

    pub fn chain_id(&self) -> String {
        lock(&self.assignments).head.chain.clone()
    }

    /// `batch` with each record in its place in the chain, the places new to it written
    /// down first. A record that does not read as an item goes as it is. Hashing a batch and
    /// writing the file down is blocking work: done on the audit's background thread, below
    /// the requests' priority.
    pub async fn link(
        self: &Arc<Self>,
        batch: Vec<(RecordId, Bytes)>,
    ) -> Result<Vec<(RecordId, Bytes)>, SpoolError> {
        let store = Arc::clone(self);
        crate::audit::background::run(move || store.link_now(batch))
            .await
            .ok_or(SpoolError::Closed)?
    }

    fn link_now(
        &self,
        batch: Vec<(RecordId, Bytes)>,
    ) -> Result<Vec<(RecordId, Bytes)>, SpoolError> {
        let (linked, fresh) = {
            let mut assignments = lock(&self.assignments);
            let mut events = lock(&self.events);
            let before = assignments.head.next_seq;
            let linked: Vec<_> = batch
                .into_iter()
                .map(|(id, record)| {
                    let Some(event) = intent::event_id(&record) else {
                        return (id, record);
                    };
                    let linked = assignments.link(&event, &record).unwrap_or(record);
                    events.insert(id, event);
                    (id, linked)
                })
                .collect();
            (linked, assignments.head.next_seq != before)
        };
        if fresh {
            self.write_now()?;
        }
        Ok(linked)
    }

    /// Forgets the places of the records stored (`ids`).
    pub fn stored(&self, ids: &[RecordId]) {
        let mut events = lock(&self.events);
        let stored: Vec<String> = ids.iter().filter_map(|id| events.remove(id)).collect();
        lock(&self.assignments).stored(&stored);
    }

    fn write_now(&self) -> Result<(), SpoolError> {
        use std::io::Write as _;
        let text = serde_json::to_vec(&*lock(&self.assignments)).unwrap_or_default();
        let temp = self.path.with_extension("json.tmp");
        let io = |e| SpoolError::io(&self.path, e);
        let mut file = std::fs::File::create(&temp).map_err(io)?;
        file.write_all(&text).map_err(io)?;
        file.sync_data().map_err(io)?;
        std::fs::rename(&temp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;

    fn record(event: &str) -> Bytes {
        Bytes::from(json!({"EventId": {"S": event}, "Outcome": {"S": "accepted"}}).to_string())
    }

    fn seq(record: &Bytes) -> String {
        let item: Map<String, Value> = serde_json::from_slice(record).unwrap();
        item["ChainSeq"]["N"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn places_survive_a_restart_until_stored() {
        let dir = tempfile::tempdir().unwrap();
        let spooled: HashSet<String> = ["e1", "e2"].iter().map(|e| (*e).to_owned()).collect();
        let store = Arc::new(ChainStore::open(dir.path(), &spooled).unwrap());
        let batch = vec![
            (RecordId::for_tests(1), record("e1")),
            (RecordId::for_tests(2), record("e2")),
        ];
        let linked = store.link(batch.clone()).await.unwrap();
        assert_eq!(seq(&linked[1].1), "2");
        let chain = store.chain_id();
        drop(store);
        // Restarted with e1 stored in the meantime: e2 keeps its place, the next is 3.
        let spooled: HashSet<String> = std::iter::once("e2".to_owned()).collect();
        let store = Arc::new(ChainStore::open(dir.path(), &spooled).unwrap());
        assert_eq!(store.chain_id(), chain);
        let again = store.link(vec![batch[1].clone()]).await.unwrap();
        assert_eq!(again[0].1, linked[1].1);
        let next = store
            .link(vec![(RecordId::for_tests(3), record("e3"))])
            .await
            .unwrap();
        assert_eq!(seq(&next[0].1), "3");
        store.stored(&[RecordId::for_tests(2), RecordId::for_tests(3)]);
        assert!(lock(&store.assignments).linked.is_empty());
    }
}
