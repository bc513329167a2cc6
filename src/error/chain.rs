//! An error with its causes on one line, for messages and logs.

use std::fmt;

/// An error and each cause its message does not already say, on one line (`a: b: c`):
/// our errors say their cause in their message, hyper's and the OS's do not.
/// [`Chain::for_log`] also escapes line breaks and other control characters, since a
/// message can quote the client's text.
pub struct Chain<'a> {
    error: &'a (dyn std::error::Error + 'static),
    escaped: bool,
}

impl<'a> Chain<'a> {
    /// As the client reads it.
    pub fn new(error: &'a (dyn std::error::Error + 'static)) -> Self {
        Self {
            error,
            escaped: false,
        }
    }

    /// For a log line: one line whatever the messages hold.
    pub fn for_log(error: &'a (dyn std::error::Error + 'static)) -> Self {
        Self {
            error,
            escaped: true,
        }
    }
}

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.error.to_string();
        let mut cause = self.error.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !said.contains(&text) {
                said.push_str(": ");
                said.push_str(&text);
            }
            cause = error.source();
        }
        if !self.escaped {
            return f.write_str(&said);
        }
        for c in said.chars() {
            // U+2028 and U+2029 end a line in some log viewers.
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}
