//! The sidecar's log: text (the default) or JSON lines on stderr, and in the text format
//! every field value escaped as the JSON format escapes it, so that no client-supplied
//! string (a table name, an expression, a header, a principal, an error quoting any of
//! them) can write a line of its own.
//!
//! tracing-subscriber's default text fields quote `&str` values through `Debug`, but write
//! `Display` values (`error = %e`) and the message as they are: a refused `TableName` holding
//! a newline then wrote a forged line, which an operator reading the log, or a collector
//! splitting it on newlines, would take for the sidecar's own. [`EscapedFields`] formats
//! each value as the default does and escapes what it writes: control characters (line
//! breaks, `ESC` of terminal sequences, every C0 and C1 code), Unicode's line and paragraph
//! separators and the bidirectional overrides that can make a line read as another.
//! Backslashes are left alone: an escape only needs to be unambiguous about line breaks.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// How the log is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Installs the process's subscriber: `RUST_LOG` (default `info`) on stderr, in `format`,
/// with colours only on a terminal.
pub fn init(format: Format) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs in files and collectors stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        Format::Text => builder.fmt_fields(EscapedFields).init(),
        Format::Json => builder.json().init(),
    }
}

/// The text format's fields, each value escaped (see the module doc).
#[derive(Clone, Copy, Debug, Default)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = Visitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes `message` bare and every other field as `name=value`, space-separated, as the
/// default format does.
struct Visitor<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_> {
    fn write(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        let name = field.name().trim_start_matches("r#");
        self.result = if name == "message" {
            self.writer.write_str(separator)
        } else {
            write!(self.writer, "{separator}{name}=")
        }
        .and_then(|()| Escaping(&mut self.writer).write_fmt(value));
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(field, format_args!("{value}"));
        } else {
            self.write(field, format_args!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.write(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

/// A writer that escapes what could break or disguise a line on its way through.
struct Escaping<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some(at) = rest.find(needs_escape) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                other => write!(self.0, "\\u{{{:x}}}", u32::from(other))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// Control characters, line and paragraph separators, and the bidirectional formatting
/// characters (Trojan Source, CVE-2021-42574).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Escapes `text` as the text log writes a value (for tests and tools that check a log).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let _ = Escaping(&mut out).write_str(text);
    out
}

#[cfg(test)]
mod tests;
