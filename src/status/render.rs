//! `/status` as JSON (for tools) and as one self-contained HTML page (for people).

use super::Status;

/// The status as JSON.
pub fn json(status: &Status) -> Vec<u8> {
    serde_json::to_vec_pretty(status).unwrap_or_else(|_| b"{}".to_vec())
}

/// The status as an HTML page: no external assets, no JavaScript.
pub fn html(status: &Status) -> String {
    let mut page =
        String::from("<!doctype html><meta charset=utf-8><title>globalscale status</title><pre>");
    page.push_str(&escape(&String::from_utf8_lossy(&json(status))));
    page.push_str("</pre>");
    page
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
