//! `/status` as JSON (for tools) and as one self-contained HTML page (for people): the style
//! inline, no script, no font or image fetched, so it reads the same through a port-forward at
//! 3 a.m. as anywhere. The page opens with one sentence that says where reads are served,
//! where writes go and, when reads left home, why. Every value from [`Status`] is escaped on
//! its way into the page.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::{AuditStatus, RegionStatus, Status};

/// The events the page lists, newest first; the JSON has every one kept.
const EVENTS_SHOWN: usize = 20;

/// The status as JSON.
pub fn json(status: &Status) -> Vec<u8> {
    serde_json::to_vec_pretty(status).unwrap_or_else(|_| b"{}".to_vec())
}

/// The status as an HTML page: no external assets, no JavaScript; it reloads itself every
/// five seconds.
pub fn html(status: &Status) -> String {
    let (tone, reads, writes) = summary(status);
    let title = match &status.serving_region {
        Some(region) => format!("GlobalScale: serving from {region}"),
        None => "GlobalScale: no region can serve".to_owned(),
    };
    let mut page = String::with_capacity(16 * 1024);
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=refresh content=5><title>{}</title><style>{STYLE}</style></head>\n\
         <body><header>",
        escape(&title),
    );
    header(&mut page, status);
    let _ = write!(
        page,
        "</header>\n<p class=\"summary {}\"><strong>{}</strong> {}</p>\n",
        tone.class(),
        escape(&reads),
        escape(&writes),
    );
    regions(&mut page, status);
    routing(&mut page, status);
    if let Some(audit) = &status.audit {
        audit_section(&mut page, audit);
    }
    events(&mut page, status);
    page.push_str(
        "<footer>Reloads every 5 s. The same as JSON: <code>curl -H 'Accept: \
         application/json' &lt;admin address&gt;/status</code></footer>\n</body></html>\n",
    );
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

/// How bad things are: the colour of the summary. Ordered, so the worst of two wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tone {
    Ok,
    Warn,
    Bad,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Ok => "ok",
            Tone::Warn => "warn",
            Tone::Bad => "bad",
        }
    }
}

/// The page's opening sentences, unescaped: where reads are served (and why not home), then
/// where writes go; in the colour of the worse.
fn summary(status: &Status) -> (Tone, String, String) {
    let (read_tone, reads) = reads(status);
    let (write_tone, writes) = writes(status);
    (read_tone.max(write_tone), reads, writes)
}

fn reads(status: &Status) -> (Tone, String) {
    let home = status.regions.iter().find(|r| r.home);
    let why = home
        .filter(|h| !h.healthy)
        .map(|h| format!(" {}.", ejection(status, &h.name)))
        .unwrap_or_default();
    let Some(serving) = status.serving_region.as_deref() else {
        return (
            Tone::Bad,
            format!("No region can serve: every region is ejected.{why}"),
        );
    };
    if !healthy(status, serving) {
        return (
            Tone::Bad,
            format!("No healthy region: requests try {serving} as a last resort.{why}"),
        );
    }
    match home {
        Some(home) if home.name == serving => (
            Tone::Ok,
            format!("Serving from {serving}, the home region."),
        ),
        Some(home) if home.healthy && home.reads_demoted => (
            Tone::Warn,
            format!(
                "Serving eventually consistent reads from {serving}: the home region, {}, is \
                 demoted for slow reads (writes and strongly consistent reads stay there).",
                home.name
            ),
        ),
        Some(home) if home.healthy => (
            Tone::Ok,
            format!(
                "Serving from {serving} by {} routing; the home region, {}, is healthy.",
                status.routing_policy, home.name
            ),
        ),
        Some(home) => (
            Tone::Warn,
            format!("Serving from {serving}: {}.", ejection(status, &home.name)),
        ),
        None => (Tone::Ok, format!("Serving from {serving}.")),
    }
}

fn writes(status: &Status) -> (Tone, String) {
    if status.write_failover == "manual" {
        let region = &status.write_region;
        if healthy(status, region) {
            (
                Tone::Ok,
                format!("Writes go to {region} (write failover: manual)."),
            )
        } else {
            (
                Tone::Bad,
                format!(
                    "Writes go to {region} (write failover: manual), which is ejected: they fail \
                     until it is readmitted or an operator moves them with POST \
                     /admin/write-region."
                ),
            )
        }
    } else if let Some(to) = &status.writes_to {
        if status.serving_region.as_ref() == Some(to) {
            (
                Tone::Ok,
                format!("Writes go to {to} too (write failover: auto)."),
            )
        } else {
            (
                Tone::Ok,
                format!("Writes go to {to} (write failover: auto; writes never move on latency)."),
            )
        }
    } else {
        (Tone::Bad, "Writes fail too.".to_owned())
    }
}

/// "us-east-1 was ejected at … (connect_error), 3 min ago", from the region's latest
/// ejection; just "is ejected" once that has left the events kept.
fn ejection(status: &Status, region: &str) -> String {
    let latest = status
        .events
        .iter()
        .find(|e| e.region == region && e.event == "ejected");
    match latest {
        Some(event) => {
            let ago = ago(&event.at, &status.generated_at)
                .map(|ago| format!(", {ago}"))
                .unwrap_or_default();
            format!(
                "{region} was ejected at {} ({}){ago}",
                when(&event.at),
                event.reason
            )
        }
        None => format!("{region} is ejected"),
    }
}

fn healthy(status: &Status, region: &str) -> bool {
    status.regions.iter().any(|r| r.name == region && r.healthy)
}

/// The version, the config's generation and load time, the auth mode, when this was gathered,
/// and a loud "draining" when it is.
fn header(page: &mut String, status: &Status) {
    page.push_str("<h1>GlobalScale status");
    if status.draining {
        page.push_str(" <span class=\"badge bad\">draining: shutting down</span>");
    }
    let _ = write!(
        page,
        "</h1><p class=meta>version {} · config generation {}, loaded {} · auth: {} · as of {}</p>",
        escape(status.version),
        status.config.generation,
        escape(&when(&status.config.loaded_at)),
        escape(status.auth),
        escape(&when(&status.generated_at)),
    );
}

fn regions(page: &mut String, status: &Status) {
    page.push_str(
        "<h2>Regions</h2>\n<div class=scroll><table><thead><tr><th>Region</th><th>Health</th>\
         <th class=num>Latency</th><th>Eventual reads</th><th class=num>Hedge after</th>\
         <th>Endpoint</th></tr></thead><tbody>\n",
    );
    for region in &status.regions {
        let _ = writeln!(
            page,
            "<tr><td class=name>{}{}</td><td>{}</td><td class=num>{}</td><td>{}</td>\
             <td class=num>{}</td><td><code>{}</code></td></tr>",
            escape(&region.name),
            region_tags(status, region),
            if region.healthy {
                "<span class=\"badge ok\">healthy</span>"
            } else {
                "<span class=\"badge bad\">ejected</span>"
            },
            latency(region.latency_ms),
            read_state(region),
            latency(Some(region.hedge_delay_ms)),
            escape(&region.endpoint),
        );
    }
    page.push_str("</tbody></table></div>\n");
}

/// The small labels after a region's name: home, serving reads, taking writes.
fn region_tags(status: &Status, region: &RegionStatus) -> String {
    let serving = status.serving_region.as_deref() == Some(region.name.as_str());
    let writes = if status.write_failover == "manual" {
        status.write_region == region.name
    } else {
        status.writes_to.as_deref() == Some(region.name.as_str())
    };
    let mut tags = String::new();
    for (on, tag) in [
        (region.home, "home"),
        (serving, "reads"),
        (writes, "writes"),
    ] {
        if on {
            let _ = write!(tags, " <span class=tag>{tag}</span>");
        }
    }
    tags
}

/// Whether eventually consistent reads go to the region: in full, ramping back, or demoted.
fn read_state(region: &RegionStatus) -> String {
    if region.reads_demoted {
        "<span class=\"badge warn\">demoted: slow</span>".to_owned()
    } else if region.read_share < 1.0 {
        format!(
            "<span class=\"badge warn\">ramping: {:.0} %</span>",
            region.read_share * 100.0
        )
    } else {
        "full".to_owned()
    }
}

fn latency(ms: Option<f64>) -> String {
    match ms {
        Some(ms) if ms > 0.0 => format!("{ms:.1} ms"),
        _ => "–".to_owned(),
    }
}

/// Reads' policy, the write failover mode and region, and the retry budget.
fn routing(page: &mut String, status: &Status) {
    let writes_to = if status.write_failover == "manual" {
        escape(&status.write_region)
    } else {
        match &status.serving_region {
            Some(region) => format!("{} (follows reads)", escape(region)),
            None => "none".to_owned(),
        }
    };
    let reads_from = match &status.serving_region {
        Some(region) => escape(region),
        None => "none".to_owned(),
    };
    let budget = &status.retry_budget;
    let _ = write!(
        page,
        "<h2>Routing</h2>\n<dl><dt>Reads</dt><dd>{reads_from} ({} routing)</dd>\
         <dt>Write failover</dt><dd>{}</dd><dt>Write region</dt><dd>{writes_to}</dd>\
         <dt>Retry budget</dt><dd><meter min=0 max={cap} value={tokens}></meter> {tokens} / {cap} \
         tokens",
        escape(status.routing_policy),
        escape(status.write_failover),
        tokens = budget.tokens,
        cap = budget.capacity,
    );
    if budget.tokens == 0 {
        page.push_str(
            " <span class=\"badge warn\">exhausted</span> only refused connections move to \
             another region",
        );
    }
    let hedging = &status.hedging;
    if hedging.enabled {
        let _ = write!(
            page,
            "</dd><dt>Hedged reads</dt><dd><meter min=0 max={burst} value={tokens}></meter> \
             {tokens} / {burst} tokens, {} % of eventually consistent reads, after each \
             region's p95 (at least {:.0} ms)",
            hedging.budget_percent,
            hedging.min_delay_ms,
            tokens = hedging.budget_tokens,
            burst = hedging.budget_burst,
        );
    } else {
        page.push_str("</dd><dt>Hedged reads</dt><dd>off");
    }
    let _ = write!(
        page,
        "</dd><dt>Failback ramp</dt><dd>{:.0} ms (reads; writes move back at once)",
        hedging.failback_ramp_ms
    );
    page.push_str("</dd></dl>\n");
}

fn audit_section(page: &mut String, audit: &AuditStatus) {
    let _ = write!(
        page,
        "<h2>Audit</h2>\n<dl><dt>Mode</dt><dd>{}</dd><dt>Table</dt><dd>{}</dd>\
         <dt>Backlog</dt><dd>{} record{} ({})</dd><dt>Oldest</dt><dd>{}</dd></dl>\n",
        escape(audit.mode),
        escape(&audit.table),
        audit.backlog,
        if audit.backlog == 1 { "" } else { "s" },
        bytes(audit.backlog_bytes),
        if audit.backlog == 0 {
            "–".to_owned()
        } else {
            age(Duration::try_from_secs_f64(audit.oldest_seconds).unwrap_or_default())
        },
    );
    if audit.spool_failing {
        page.push_str(
            "<p class=\"alert bad\">The spool's disk refused a write: audited writes get a 503 \
             until it takes one.</p>\n",
        );
    }
}

/// The recent ejections and readmissions, newest first.
fn events(page: &mut String, status: &Status) {
    page.push_str("<h2>Recent events</h2>\n");
    if status.events.is_empty() {
        page.push_str("<p class=none>none</p>\n");
        return;
    }
    page.push_str(
        "<div class=scroll><table><thead><tr><th>Time</th><th>Region</th><th>Event</th><th>Reason</th></tr>\
         </thead><tbody>\n",
    );
    for event in status.events.iter().take(EVENTS_SHOWN) {
        let class = if event.event == "ejected" {
            "bad"
        } else {
            "ok"
        };
        let ago = ago(&event.at, &status.generated_at)
            .map(|ago| format!(" <span class=ago>{ago}</span>"))
            .unwrap_or_default();
        let _ = writeln!(
            page,
            "<tr><td>{}{ago}</td><td class=name>{}</td><td><span class=\"badge {class}\">{}</span>\
             </td><td><code>{}</code></td></tr>",
            escape(&when(&event.at)),
            escape(&event.region),
            escape(event.event),
            escape(event.reason),
        );
    }
    page.push_str("</tbody></table></div>\n");
    if let Some(older) = status.events.len().checked_sub(EVENTS_SHOWN)
        && older > 0
    {
        let _ = writeln!(page, "<p class=meta>{older} older in the JSON.</p>");
    }
}

/// `2026-11-26T08:57:21Z` as `2026-11-26 08:57:21 UTC`; anything else as it is.
fn when(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z').and_then(|t| t.split_once('T')) {
        Some((date, time)) => format!("{date} {time} UTC"),
        None => rfc3339.to_owned(),
    }
}

/// How long before `now` the time `at` was, as "3 min ago"; both RFC 3339.
fn ago(at: &str, now: &str) -> Option<String> {
    let at = humantime::parse_rfc3339(at).ok()?;
    let now: SystemTime = humantime::parse_rfc3339(now).ok()?;
    let elapsed = now.duration_since(at).unwrap_or_default();
    Some(format!("{} ago", age(elapsed)))
}

/// A duration in its two largest units, the smaller left out at zero: "42 s", "3 min 12 s",
/// "2 h".
fn age(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (big, big_unit, small, small_unit) = match secs {
        0..60 => return format!("{secs} s"),
        60..3600 => (secs / 60, "min", secs % 60, "s"),
        3600..86_400 => (secs / 3600, "h", secs % 3600 / 60, "min"),
        _ => (secs / 86_400, "d", secs % 86_400 / 3600, "h"),
    };
    if small == 0 {
        format!("{big} {big_unit}")
    } else {
        format!("{big} {big_unit} {small} {small_unit}")
    }
}

/// Bytes in binary units with one decimal: "512 B", "3.4 KiB".
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut unit = 1024u64;
    let mut name = UNITS[0];
    for next in &UNITS[1..] {
        if n < unit * 1024 {
            break;
        }
        unit *= 1024;
        name = next;
    }
    let tenths = u128::from(n) * 10 / u128::from(unit);
    format!("{}.{} {name}", tenths / 10, tenths % 10)
}

/// Light by default, dark when the browser prefers it; state in colour and in words.
const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#16181d;--muted:#5a606b;--bg:#fff;--line:#dde1e6;\
--head:#f4f6f8;--ok:#0b6b2f;--ok-bg:#e2f5e8;--warn:#7a4a00;--warn-bg:#fff2d5;--bad:#a5130e;\
--bad-bg:#fde4e1;--tag:#3b4b63;--tag-bg:#e8edf4}\
@media (prefers-color-scheme:dark){:root{--fg:#e8eaed;--muted:#a3a9b3;--bg:#121417;\
--line:#30353c;--head:#1b1f24;--ok:#7ddc97;--ok-bg:#13301d;--warn:#ffd07a;--warn-bg:#3a2a0a;\
--bad:#ff9b92;--bad-bg:#3d1614;--tag:#c3cede;--tag-bg:#26303d}}\
*{box-sizing:border-box}\
body{margin:0 auto;max-width:68rem;padding:1.5rem 2rem 2rem;color:var(--fg);background:var(--bg);\
font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif}\
h1{font-size:1.5rem;margin:0}\
h1 .badge{font-size:1rem;vertical-align:middle;margin-left:.5rem}\
h2{font-size:1.1rem;margin:1.75rem 0 .5rem}\
.meta,footer,.ago,.none{color:var(--muted)}\
.meta{margin:.25rem 0 1rem}\
footer{margin-top:2rem;font-size:.875rem}\
.summary{font-size:1.2rem;margin:0;padding:.85rem 1.1rem;border-left:.4rem solid;\
border-radius:.3rem}\
.summary.ok{color:var(--ok);background:var(--ok-bg)}\
.summary.warn{color:var(--warn);background:var(--warn-bg)}\
.summary.bad,.alert.bad{color:var(--bad);background:var(--bad-bg)}\
.alert{font-weight:600;padding:.6rem 1rem;border-left:.4rem solid;border-radius:.3rem}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.45rem 1.5rem .45rem .6rem;border-bottom:1px solid var(--line);\
vertical-align:baseline;white-space:nowrap}\
th:last-child,td:last-child{width:100%}\
.scroll{overflow-x:auto}\
th{background:var(--head);font-size:.8rem;font-weight:600;color:var(--muted);\
text-transform:uppercase;letter-spacing:.04em}\
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.name{font-weight:600;white-space:nowrap}\
code{font:.9em ui-monospace,'DejaVu Sans Mono',monospace}\
.badge{display:inline-block;padding:.05rem .6rem;border-radius:1rem;font-size:.875rem;\
font-weight:700}\
.badge.ok{color:var(--ok);background:var(--ok-bg)}\
.badge.warn{color:var(--warn);background:var(--warn-bg)}\
.badge.bad{color:var(--bad);background:var(--bad-bg)}\
.tag{display:inline-block;margin-left:.4rem;padding:0 .45rem;border-radius:.25rem;\
font-size:.75rem;font-weight:600;color:var(--tag);background:var(--tag-bg)}\
.ago{font-size:.875rem;margin-left:.4rem}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1.5rem;margin:0}\
dt{color:var(--muted)}\
dd{margin:0}\
meter{width:8rem;vertical-align:middle}";

#[cfg(test)]
mod tests;
