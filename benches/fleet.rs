//! The fleet simulation, printed, never asserted: N sidecars (1 to 10,000) in front of
//! three regions (home A, B, C) through an outage of A and its recovery, in 100 ms steps.
//! For each region, the requests per second it receives: client traffic, retries, hedges and
//! probes, with the failback ramp and without it (`failback_ramp_ms = 0`), and what the
//! probes cost a month in read request units at DynamoDB's on-demand price.
//!
//! The model is the sidecar's rules with the default config, per sidecar:
//! - 100 client requests/s, 80 % eventually consistent reads, 20 % writes, all to A while it
//!   is healthy; hedges at most 5 % of reads (the budget's steady state), to B;
//! - probes once a second to each region live traffic is not reaching (eventually consistent
//!   GetItems of an absent item: half a read request unit each);
//! - A goes silent at `OUTAGE` (a black hole): reads are hedged to B after 20 ms until A is
//!   demoted for reads (300 ms of slow reads); writes wait their 1 s attempt timeout and are
//!   retried on B; three timeouts eject A (1 s); probes then find it silent;
//! - A answers again at `RECOVERY`; each sidecar's next two probes (its probe phase is uniform
//!   in the second) readmit it; writes move back at once, reads at once without the ramp or
//!   over `RAMP` with it.
//!
//! `cargo bench --bench fleet` prints the tables recorded in `benches/README.md`; under
//! `cargo test` (no `--bench`) it runs one small fleet as a smoke test.

// A simulation over small counts and seconds: the casts between them are exact.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    clippy::float_cmp
)]

use std::fmt::Write as _;

const STEP: f64 = 0.1;
const END: f64 = 120.0;
const OUTAGE: f64 = 30.0;
const RECOVERY: f64 = 60.0;
const RAMP: f64 = 10.0;

const CLIENT_RPS: f64 = 100.0;
const READ_SHARE: f64 = 0.8;
const HEDGE_SHARE: f64 = 0.05;
const PROBE_INTERVAL: f64 = 1.0;
const DEMOTE_AFTER: f64 = 0.3;
const EJECT_AFTER: f64 = 1.0;
const ATTEMPT_TIMEOUT: f64 = 1.0;
const READMIT_PROBES: f64 = 2.0;
/// US East (N. Virginia), on demand, per million read request units.
const PRICE_PER_MILLION_RRU: f64 = 0.125;
const SECONDS_PER_MONTH: f64 = 30.0 * 86_400.0;

/// What the regions receive in one step, per second, by cause.
#[derive(Debug, Default, Clone, Copy)]
struct Load {
    client: [f64; 3],
    retries: [f64; 3],
    hedges: [f64; 3],
    probes: [f64; 3],
}

impl Load {
    fn total(&self, region: usize) -> f64 {
        self.client[region] + self.retries[region] + self.hedges[region] + self.probes[region]
    }

    fn add(&mut self, other: &Load) {
        for r in 0..3 {
            self.client[r] += other.client[r];
            self.retries[r] += other.retries[r];
            self.hedges[r] += other.hedges[r];
            self.probes[r] += other.probes[r];
        }
    }
}

/// One sidecar's load at time `t`, readmitting A at `readmit`.
fn sidecar(t: f64, readmit: f64, ramp: f64) -> Load {
    let (reads, writes) = (CLIENT_RPS * READ_SHARE, CLIENT_RPS * (1.0 - READ_SHARE));
    let mut load = Load::default();
    let probe = 1.0 / PROBE_INTERVAL;
    if t < OUTAGE {
        load.client[0] = reads + writes;
        load.hedges[1] = reads * HEDGE_SHARE;
        load.probes = [0.0, probe, probe];
        return load;
    }
    if t < readmit {
        let since = t - OUTAGE;
        // Reads: sent to A and hedged to B until A is demoted, then to B alone.
        if since < DEMOTE_AFTER {
            load.client[0] += reads;
            load.hedges[1] += reads;
        } else {
            load.client[1] += reads;
        }
        // Writes: to A until it is ejected, each retried on B an attempt timeout later.
        if since < EJECT_AFTER {
            load.client[0] += writes;
        } else {
            load.client[1] += writes;
        }
        if (ATTEMPT_TIMEOUT..ATTEMPT_TIMEOUT + EJECT_AFTER).contains(&since) {
            load.retries[1] += writes;
        }
        // Probes: A once it is ejected (they time out until it recovers), C always.
        load.probes = [if since >= EJECT_AFTER { probe } else { 0.0 }, 0.0, probe];
        return load;
    }
    let share = if ramp == 0.0 {
        1.0
    } else {
        ((t - readmit) / ramp).min(1.0)
    };
    load.client[0] = writes + reads * share;
    load.client[1] = reads * (1.0 - share);
    load.hedges[1] = reads * share * HEDGE_SHARE;
    // B is probed again once no read reaches it.
    load.probes = [0.0, if share >= 1.0 { probe } else { 0.0 }, probe];
    load
}

/// The fleet's load per step: `n` sidecars with probe phases spread evenly over the second.
fn fleet(n: usize, ramp: f64) -> Vec<Load> {
    let steps = (END / STEP) as usize;
    let mut series = vec![Load::default(); steps];
    for i in 0..n {
        let phase = (i as f64 + 0.5) / n as f64 * PROBE_INTERVAL;
        // The first probe sent after the recovery, then one more.
        let readmit = RECOVERY + phase + (READMIT_PROBES - 1.0) * PROBE_INTERVAL;
        for (step, load) in series.iter_mut().enumerate() {
            load.add(&sidecar(step as f64 * STEP, readmit, ramp));
        }
    }
    series
}

/// The mean of a region's total over `[from, to)` seconds.
fn mean(series: &[Load], region: usize, from: f64, to: f64) -> f64 {
    let (a, b) = ((from / STEP) as usize, (to / STEP) as usize);
    series[a..b].iter().map(|l| l.total(region)).sum::<f64>() / (b - a) as f64
}

/// The largest rise of a region's load within any one second.
fn steepest_second(series: &[Load], region: usize) -> f64 {
    let per_second = (1.0 / STEP) as usize;
    series
        .windows(per_second + 1)
        .map(|w| w[per_second].total(region) - w[0].total(region))
        .fold(0.0, f64::max)
}

fn rps(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.0}k", x / 1_000.0)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn table(sizes: &[usize]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| sidecars | ramp | A before | A outage | B outage peak | A +1 s | A +2 s | A +5 s | A +10 s | steepest rise at A, per s | B probes+hedges before |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in sizes {
        for ramp in [0.0, RAMP] {
            let s = fleet(n, ramp);
            let b_peak = (0..s.len()).map(|i| s[i].total(1)).fold(0.0, f64::max);
            let before = s[((OUTAGE - 1.0) / STEP) as usize];
            let at = |dt: f64| mean(&s, 0, RECOVERY + dt, RECOVERY + dt + 1.0);
            let _ = writeln!(
                out,
                "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                if ramp == 0.0 {
                    "off".to_owned()
                } else {
                    format!("{ramp:.0} s")
                },
                rps(mean(&s, 0, 10.0, OUTAGE)),
                rps(mean(&s, 0, OUTAGE + 5.0, RECOVERY)),
                rps(b_peak),
                rps(at(1.0)),
                rps(at(2.0)),
                rps(at(5.0)),
                rps(at(10.0)),
                rps(steepest_second(&s, 0)),
                rps(before.probes[1] + before.hedges[1]),
            );
        }
    }
    out
}

/// Probes per sidecar and month, and their price, in steady state (two regions probed).
fn probe_cost(sizes: &[usize]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| sidecars | probes/s | read request units a month | $ a month |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    let per_sidecar = 2.0 / PROBE_INTERVAL;
    for &n in sizes {
        let probes = per_sidecar * n as f64;
        let units = probes * SECONDS_PER_MONTH * 0.5;
        let dollars = units / 1e6 * PRICE_PER_MILLION_RRU;
        let _ = writeln!(out, "| {n} | {probes:.0} | {units:.3e} | {dollars:.2} |");
    }
    out
}

/// A's load around the recovery, one row per second, as bars: without and with the ramp.
fn plot(n: usize) -> String {
    let (off, on) = (fleet(n, 0.0), fleet(n, RAMP));
    let peak = off.iter().map(|l| l.total(0)).fold(0.0, f64::max);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A's requests/s after the recovery, {n} sidecars (# no ramp, = 10 s ramp; full width {})",
        rps(peak)
    );
    let mut t = RECOVERY;
    while t < RECOVERY + 13.0 {
        let i = (t / STEP) as usize;
        let bar = |x: f64| ((x / peak) * 40.0).round() as usize;
        let _ = writeln!(
            out,
            "+{:>4.1} s |{:<40}| {:>6}\n        |{:<40}| {:>6}",
            t - RECOVERY,
            "#".repeat(bar(off[i].total(0))),
            rps(off[i].total(0)),
            "=".repeat(bar(on[i].total(0))),
            rps(on[i].total(0)),
        );
        t += 1.0;
    }
    out
}

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: a smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if full {
        &[1, 10, 100, 1_000, 10_000]
    } else {
        &[1, 10]
    };
    println!(
        "Per-region requests/s (client traffic, retries, hedges, probes), A out at {OUTAGE} s, back at {RECOVERY} s:\n"
    );
    println!("{}", table(sizes));
    println!(
        "Probe cost (eventually consistent GetItem of an absent item: 0.5 RRU; ${PRICE_PER_MILLION_RRU} per million RRU):\n"
    );
    println!("{}", probe_cost(sizes));
    println!("{}", plot(*sizes.last().unwrap_or(&1)));
}
