use super::*;
use crate::proxy::RegionEvent;
use crate::status::{BudgetStatus, ConfigStatus, HedgingStatus};

fn region(name: &str, home: bool, healthy: bool) -> RegionStatus {
    RegionStatus {
        name: name.to_owned(),
        endpoint: format!("https://dynamodb.{name}.amazonaws.com"),
        home,
        healthy,
        latency_ms: Some(4.25),
        reads_demoted: false,
        read_share: 1.0,
        get_item_p50_ms: Some(4.0),
        get_item_p95_ms: Some(9.0),
        hedge_delay_ms: 20.0,
    }
}

fn event(at: &str, region: &str, event: &'static str, reason: &'static str) -> RegionEvent {
    RegionEvent {
        at: at.to_owned(),
        region: region.to_owned(),
        event,
        reason,
    }
}

/// Two regions, home healthy and serving, automatic write failover, no audit.
fn healthy_home() -> Status {
    Status {
        version: "0.1.0",
        generated_at: "2026-11-26T09:10:00Z".to_owned(),
        config: ConfigStatus {
            generation: 3,
            loaded_at: "2026-11-26T08:00:00Z".to_owned(),
        },
        routing_policy: "ordered",
        write_failover: "auto",
        write_region: "us-east-1".to_owned(),
        writes_to: Some("us-east-1".to_owned()),
        serving_region: Some("us-east-1".to_owned()),
        regions: vec![
            region("us-east-1", true, true),
            region("us-west-2", false, true),
        ],
        events: Vec::new(),
        retry_budget: BudgetStatus {
            tokens: 87,
            capacity: 100,
        },
        hedging: HedgingStatus {
            enabled: true,
            budget_tokens: 50,
            budget_burst: 50,
            budget_percent: 5,
            min_delay_ms: 20.0,
            demote_factor: 3.0,
            demote_margin_ms: 50.0,
            failback_ramp_ms: 10_000.0,
        },
        audit: None,
        auth: "sigv4",
        draining: false,
    }
}

#[test]
fn a_demoted_home_and_a_ramping_region_are_shown() {
    let mut status = healthy_home();
    status.regions[0].reads_demoted = true;
    status.serving_region = Some("us-west-2".to_owned());
    let page = html(&status);
    assert!(page.contains("demoted: slow"), "{page}");
    assert!(
        page.contains("the home region, us-east-1, is demoted for slow reads"),
        "{page}"
    );
    assert!(
        page.contains(
            "Writes go to us-east-1 (write failover: auto; writes never move on latency)."
        ),
        "{page}"
    );
    status.regions[0].reads_demoted = false;
    status.regions[0].read_share = 0.4;
    assert!(html(&status).contains("ramping: 40 %"));
    let json: serde_json::Value = serde_json::from_slice(&json(&status)).unwrap();
    assert_eq!(json["regions"][0]["read_share"], 0.4);
    assert_eq!(json["hedging"]["budget_percent"], 5);
}

/// Home ejected (a readmission of it before, to be skipped), reads on us-west-2.
fn home_ejected() -> Status {
    let mut status = healthy_home();
    status.regions[0].healthy = false;
    status.serving_region = Some("us-west-2".to_owned());
    status.writes_to = Some("us-west-2".to_owned());
    status.events = vec![
        event(
            "2026-11-26T09:07:00Z",
            "us-east-1",
            "ejected",
            "connect_error",
        ),
        event("2026-11-26T09:01:00Z", "us-east-1", "readmitted", "success"),
        event("2026-11-26T09:00:00Z", "us-east-1", "ejected", "timeout"),
    ];
    status
}

fn audit() -> AuditStatus {
    AuditStatus {
        mode: "spooled",
        table: "AuditTrail".to_owned(),
        backlog: 12,
        backlog_bytes: 3 * 1024 + 512,
        oldest_seconds: 125.4,
        spool_failing: false,
    }
}

/// The summary as the page shows it: two sentences on one line.
fn said(status: &Status) -> (Tone, String) {
    let (tone, reads, writes) = summary(status);
    (tone, format!("{reads} {writes}"))
}

/// The page's text with the tags dropped and entities left as they are.
fn text(page: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in page.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[test]
fn escape_covers_markup_and_quotes() {
    assert_eq!(
        escape(r#"<a href="x">'&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(escape("us-east-1"), "us-east-1");
}

#[test]
fn every_value_is_escaped() {
    let hostile = "<script>alert(1)</script>";
    let mut status = home_ejected();
    status.regions[1].name = hostile.to_owned();
    status.regions[1].endpoint = format!("http://x/\"{hostile}");
    status.serving_region = Some(hostile.to_owned());
    status.writes_to = Some(hostile.to_owned());
    status.events[0].region = hostile.to_owned();
    status.config.loaded_at = hostile.to_owned();
    status.audit = Some(AuditStatus {
        table: hostile.to_owned(),
        ..audit()
    });
    let page = html(&status);
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("\"<"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(text(&page).contains("Serving from &lt;script&gt;"));
}

#[test]
fn the_page_is_self_contained() {
    let page = html(&home_ejected());
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("<meta http-equiv=refresh content=5>"));
    for external in ["<script", "<link", "<img", "src=", "url(", "@import"] {
        assert!(!page.contains(external), "{external} in the page");
    }
}

#[test]
fn summary_when_home_is_healthy() {
    let (tone, sentence) = said(&healthy_home());
    assert_eq!(tone, Tone::Ok);
    assert_eq!(
        sentence,
        "Serving from us-east-1, the home region. \
         Writes go to us-east-1 too (write failover: auto)."
    );
    assert!(text(&html(&healthy_home())).contains(&sentence));
}

#[test]
fn summary_when_home_is_ejected_gives_the_latest_ejection_and_its_reason() {
    let (tone, sentence) = said(&home_ejected());
    assert_eq!(tone, Tone::Warn);
    assert_eq!(
        sentence,
        "Serving from us-west-2: us-east-1 was ejected at 2026-11-26 09:07:00 UTC \
         (connect_error), 3 min ago. Writes go to us-west-2 too (write failover: auto)."
    );
}

#[test]
fn summary_when_writes_stay_on_an_ejected_region() {
    let mut status = home_ejected();
    status.write_failover = "manual";
    let (tone, sentence) = said(&status);
    assert_eq!(tone, Tone::Bad);
    assert!(
        sentence.ends_with(
            "Writes go to us-east-1 (write failover: manual), which is ejected: they fail until \
             it is readmitted or an operator moves them with POST /admin/write-region."
        ),
        "{sentence}"
    );
}

#[test]
fn summary_when_home_is_left_by_latency_or_every_region_is_down() {
    let mut status = healthy_home();
    status.routing_policy = "latency";
    status.serving_region = Some("us-west-2".to_owned());
    assert_eq!(
        reads(&status),
        (
            Tone::Ok,
            "Serving from us-west-2 by latency routing; the home region, us-east-1, is healthy."
                .to_owned()
        )
    );

    let mut status = home_ejected();
    status.regions[1].healthy = false;
    status.serving_region = None;
    status.writes_to = None;
    status.events.clear();
    assert_eq!(
        said(&status),
        (
            Tone::Bad,
            "No region can serve: every region is ejected. us-east-1 is ejected. \
             Writes fail too."
                .to_owned()
        )
    );

    status.serving_region = Some("us-west-2".to_owned());
    let (tone, sentence) = reads(&status);
    assert_eq!(tone, Tone::Bad);
    assert!(sentence.starts_with("No healthy region: requests try us-west-2 as a last resort."));
}

#[test]
fn regions_say_their_health_in_words_and_colour() {
    let page = html(&home_ejected());
    assert!(page.contains("<span class=\"badge bad\">ejected</span>"));
    assert!(page.contains("<span class=\"badge ok\">healthy</span>"));
    let text = text(&page);
    assert!(text.contains("us-east-1 home"), "{text}");
    assert!(text.contains("us-west-2 reads writes"), "{text}");
    assert!(text.contains("4.2 ms") || text.contains("4.3 ms"), "{text}");
    assert!(text.contains("https://dynamodb.us-west-2.amazonaws.com"));
    assert!(text.contains("87 / 100 tokens"));
}

#[test]
fn the_header_has_version_config_auth_and_draining() {
    let mut status = healthy_home();
    let text_of = |status: &Status| text(&html(status));
    let header = text_of(&status);
    assert!(header.contains(
        "version 0.1.0 · config generation 3, loaded 2026-11-26 08:00:00 UTC · auth: sigv4"
    ));
    assert!(!header.contains("draining"));
    status.draining = true;
    assert!(text_of(&status).contains("draining"));
}

#[test]
fn the_audit_section_only_when_audit_is_on() {
    let page = html(&healthy_home());
    assert!(!page.contains("<h2>Audit</h2>"));

    let mut status = healthy_home();
    status.audit = Some(audit());
    let page = text(&html(&status));
    assert!(page.contains("Audit"));
    assert!(page.contains("spooled"));
    assert!(page.contains("AuditTrail"));
    assert!(page.contains("12 records (3.5 KiB)"), "{page}");
    assert!(page.contains("Oldest2 min 5 s"), "{page}");
    assert!(!page.contains("spool's disk refused"));

    status.audit = Some(AuditStatus {
        spool_failing: true,
        ..audit()
    });
    assert!(html(&status).contains("The spool's disk refused a write"));
}

#[test]
fn events_newest_first_or_none() {
    let page = html(&healthy_home());
    assert!(
        page.contains("<h2>Recent events</h2>\n<p class=none>none</p>"),
        "{page}"
    );

    let page = text(&html(&home_ejected()));
    let newest = page.find("09:07:00 UTC").expect("newest event");
    let oldest = page.find("09:00:00 UTC").expect("oldest event");
    assert!(newest < oldest);
    assert!(page.contains("readmittedsuccess"));
    assert!(page.contains("10 min ago"));
}

#[test]
fn units_read_naturally() {
    assert_eq!(bytes(0), "0 B");
    assert_eq!(bytes(1023), "1023 B");
    assert_eq!(bytes(1536), "1.5 KiB");
    assert_eq!(bytes(5 * 1024 * 1024), "5.0 MiB");
    assert_eq!(age(Duration::from_secs(42)), "42 s");
    assert_eq!(age(Duration::from_secs(192)), "3 min 12 s");
    assert_eq!(age(Duration::from_hours(2)), "2 h");
    assert_eq!(age(Duration::from_mins(125)), "2 h 5 min");
    assert_eq!(age(Duration::from_hours(25)), "1 d 1 h");
    assert_eq!(when("2026-11-26T08:57:21Z"), "2026-11-26 08:57:21 UTC");
    assert_eq!(when("not a time"), "not a time");
    assert_eq!(ago("garbage", "2026-11-26T08:57:21Z"), None);
}
