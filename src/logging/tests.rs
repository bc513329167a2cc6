//! The text format against every way a value reaches it: the message, `&str`, `Display`,
//! `Debug` and error fields, span fields; each carrying a forged line.

use std::io;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

use super::*;

/// A line a client would like the log to show as the sidecar's own.
const FORGED: &str =
    "x\n2001-01-01T00:00:00.000000Z ERROR globalscale::proxy: FORGED admin token accepted\r\n";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

fn text_log(events: impl FnOnce()) -> String {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .fmt_fields(EscapedFields)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, events);
    String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
}

#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "table {} is not allowed", self.0)
    }
}

impl std::error::Error for Refusal {}

#[test]
fn no_field_of_any_kind_writes_a_line_of_its_own() {
    let hostile = format!("{FORGED}\u{1b}[2J\u{2028}\u{202e}\u{85}end");
    let refusal = Refusal(hostile.clone());
    let error: &(dyn std::error::Error + 'static) = &refusal;
    let log = text_log(|| {
        let span = tracing::info_span!("request", principal = %hostile);
        let _entered = span.enter();
        tracing::warn!("message {hostile}");
        tracing::warn!(table = hostile.as_str(), "a &str field");
        tracing::warn!(expression = %hostile, "a Display field");
        tracing::warn!(headers = ?vec![hostile.clone()], "a Debug field");
        tracing::warn!(error, "an error field");
        tracing::warn!(user_agent = %refusal, "a Display error");
    });
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 6, "{log}");
    for line in &lines {
        assert!(line.contains(" WARN request{principal="), "{line}");
        assert!(
            line.contains("FORGED"),
            "the value is logged, escaped: {line}"
        );
        assert!(!line.starts_with("2001-01-01"), "{line}");
    }
    for raw in ['\r', '\u{1b}', '\u{2028}', '\u{202e}', '\u{85}'] {
        assert!(!log.contains(raw), "{raw:?} written raw:\n{log}");
    }
    assert!(
        log.contains("\\n2001-01-01T00:00:00.000000Z ERROR"),
        "{log}"
    );
    assert!(log.contains("\\u{1b}[2J"), "{log}");
}

#[test]
fn ordinary_values_read_as_the_default_format_writes_them() {
    let log = text_log(|| {
        tracing::info!(listener = "proxy", open = 3, ok = true, error = %"refused", "serving");
    });
    assert!(
        log.trim_end()
            .ends_with("serving listener=\"proxy\" open=3 ok=true error=refused"),
        "{log}"
    );
}

#[test]
fn escape_keeps_text_and_backslashes() {
    assert_eq!(escape("GlobalCatalog"), "GlobalCatalog");
    assert_eq!(escape("a\\nb"), "a\\nb");
    assert_eq!(escape("a\nb\tc\u{7f}é"), "a\\nb\\tc\\u{7f}é");
}
