//! Tamper evidence, as CloudTrail's log file integrity validation gives for its logs: each
//! spool (one sidecar instance) links the records it ships into a chain. A record carries
//! `ChainId` (the spool's, a ULID), `ChainSeq` (1, 2, ... in the order the shipper first
//! sends them) and `PrevHash`; its `Hash` is SHA-256 over its canonical form (every
//! attribute but `Hash`, keys sorted, compact JSON: `PrevHash` included, so each hash covers
//! the whole chain before it). A record deleted leaves a gap in `ChainSeq`; one changed no
//! longer matches its `Hash`; one inserted (or a changed one given a fresh hash) breaks the
//! next record's `PrevHash`, or carries a sequence number twice.
//!
//! Cancelled intents never reach the shipper, so a refused write leaves no gap. The shipper
//! fixes a record's place in the chain before its first send and keeps it across resends and
//! restarts ([`Assignments`]), so a resend never moves a record.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::record::raw::{self, Attribute};

pub const CHAIN_ID: &str = "ChainId";
pub const CHAIN_SEQ: &str = "ChainSeq";
pub const PREV_HASH: &str = "PrevHash";
pub const HASH: &str = "Hash";

/// What the first record of a chain links to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256, hex, of `item`'s canonical form: every attribute but `Hash`, keys sorted,
/// compact JSON.
pub fn digest(item: &Map<String, Value>) -> String {
    // serde_json's map keeps keys sorted: its JSON is the canonical form.
    let mut canonical = item.clone();
    canonical.remove(HASH);
    crate::digest::sha256_hex(&serde_json::to_vec(&canonical).unwrap_or_default())
}

/// Where a chain stands: what its next record gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub chain: String,
    pub next_seq: u64,
    pub prev: String,
}

impl Head {
    pub fn new(chain: String) -> Self {
        Head {
            chain,
            next_seq: 1,
            prev: GENESIS.to_owned(),
        }
    }

    /// `record` with its place in the chain (the next), which then moves on past it. The
    /// hash is taken over the record's text as it is (see [`raw`]), the same as [`digest`]
    /// of the parsed item, without parsing its images into values.
    pub fn link(&mut self, record: &[u8]) -> Option<Linked> {
        let mut item: BTreeMap<String, Attribute<'_>> = raw::read(record)?
            .into_iter()
            .filter(|(name, _)| name != HASH)
            .map(|(name, value)| (name, Attribute::Raw(value)))
            .collect();
        let event = match item.get("EventId")? {
            Attribute::Raw(value) => serde_json::from_str::<Typed>(value.get()).ok()?.s,
            _ => return None,
        };
        item.insert(CHAIN_ID.into(), Attribute::New(json!({ "S": self.chain })));
        let seq = json!({ "N": self.next_seq.to_string() });
        item.insert(CHAIN_SEQ.into(), Attribute::New(seq));
        item.insert(PREV_HASH.into(), Attribute::New(json!({ "S": self.prev })));
        let hash = crate::digest::sha256_hex(&raw::write(&item)?);
        item.insert(HASH.into(), Attribute::New(json!({ "S": hash })));
        let record = Bytes::from(raw::write(&item)?);
        self.next_seq += 1;
        self.prev = hash;
        Some(Linked { event, record })
    }
}

/// A string attribute's value: `{"S": "..."}`.
#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "S")]
    s: String,
}

/// A record with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linked {
    pub event: String,
    #[serde(with = "text")]
    pub record: Bytes,
}

/// Records are JSON: kept as text in the assignments file.
mod text {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        String::deserialize(d).map(Bytes::from)
    }
}

/// The chain's head and the records linked but not yet acknowledged, by event id: a resend
/// (after a failed batch, or after a restart) sends the very record first linked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignments {
    pub head: Head,
    pub linked: BTreeMap<String, Linked>,
}

impl Assignments {
    pub fn new(chain: String) -> Self {
        Assignments {
            head: Head::new(chain),
            linked: BTreeMap::new(),
        }
    }

    /// The linked form of `record` (event id `event`): the one assigned before, or the
    /// next place in the chain. `None` for a record that does not read as an item.
    pub fn link(&mut self, event: &str, record: &[u8]) -> Option<Bytes> {
        if let Some(linked) = self.linked.get(event) {
            return Some(linked.record.clone());
        }
        let linked = self.head.link(record)?;
        let record = linked.record.clone();
        self.linked.insert(event.to_owned(), linked);
        Some(record)
    }

    /// Forgets the records stored: their place is in the audit table now.
    pub fn stored(&mut self, events: &[String]) {
        for event in events {
            self.linked.remove(event);
        }
    }
}

/// What `verify` found wrong with the records it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Sequence numbers missing between two records read: deleted (or not shipped yet).
    Gap { chain: String, from: u64, to: u64 },
    /// A record whose `Hash` is not its content's: changed after it was written.
    Altered {
        chain: String,
        seq: u64,
        event: String,
    },
    /// A record whose `PrevHash` is not the hash of the record before it: inserted, or the
    /// one before it replaced.
    Unlinked {
        chain: String,
        seq: u64,
        event: String,
    },
    /// Two records with one place in the chain.
    Duplicate { chain: String, seq: u64 },
    /// A record without a readable place in any chain: written by something else.
    Unchained { event: String },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gap { chain, from, to } if from == to => {
                write!(f, "gap: chain {chain} has no record {from} (deleted?)")
            }
            Self::Gap { chain, from, to } => {
                write!(
                    f,
                    "gap: chain {chain} has no records {from}..={to} (deleted?)"
                )
            }
            Self::Altered { chain, seq, event } => write!(
                f,
                "altered: chain {chain} record {seq} (EventId {event}) does not match its Hash"
            ),
            Self::Unlinked { chain, seq, event } => write!(
                f,
                "unlinked: chain {chain} record {seq} (EventId {event}) does not follow the record before it (inserted or replaced)"
            ),
            Self::Duplicate { chain, seq } => {
                write!(f, "forged: chain {chain} has two records {seq}")
            }
            Self::Unchained { event } => {
                write!(f, "forged: record {event} belongs to no chain")
            }
        }
    }
}

/// One record's place, as stored.
struct Place {
    seq: u64,
    prev: String,
    hash: String,
    event: String,
    /// Whether `hash` is the record's own.
    intact: bool,
}

fn place(item: &Map<String, Value>) -> Option<(String, Place)> {
    let s = |name: &str| item.get(name)?.get("S")?.as_str().map(str::to_owned);
    let seq = item.get(CHAIN_SEQ)?.get("N")?.as_str()?.parse().ok()?;
    let hash = s(HASH)?;
    Some((
        s(CHAIN_ID)?,
        Place {
            seq,
            prev: s(PREV_HASH)?,
            intact: digest(item) == hash,
            hash,
            event: s("EventId").unwrap_or_default(),
        },
    ))
}

/// Walks the chains of `records` (any order) and reports what breaks them. Only what is
/// read can be judged: a chain's records before the first read are not asked for, and a
/// tail deleted whole leaves no gap (docs/src/audit.md, "Tamper evidence": what the chain
/// proves).
pub fn verify(records: &[Map<String, Value>]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut chains: HashMap<String, Vec<Place>> = HashMap::new();
    for item in records {
        match place(item) {
            Some((chain, place)) => chains.entry(chain).or_default().push(place),
            None => findings.push(Finding::Unchained {
                event: item
                    .get("EventId")
                    .and_then(|e| e.get("S"))
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned(),
            }),
        }
    }
    let mut names: Vec<_> = chains.keys().cloned().collect();
    names.sort();
    for chain in names {
        let mut places = chains.remove(&chain).unwrap_or_default();
        places.sort_by_key(|p| p.seq);
        walk(&chain, &places, &mut findings);
    }
    findings
}

fn walk(chain: &str, places: &[Place], findings: &mut Vec<Finding>) {
    let chain = || chain.to_owned();
    for (i, place) in places.iter().enumerate() {
        if !place.intact {
            findings.push(Finding::Altered {
                chain: chain(),
                seq: place.seq,
                event: place.event.clone(),
            });
        }
        let Some(before) = i.checked_sub(1).map(|b| &places[b]) else {
            if place.seq == 1 && place.prev != GENESIS {
                findings.push(Finding::Unlinked {
                    chain: chain(),
                    seq: 1,
                    event: place.event.clone(),
                });
            }
            continue;
        };
        if before.seq == place.seq {
            findings.push(Finding::Duplicate {
                chain: chain(),
                seq: place.seq,
            });
        } else if before.seq + 1 < place.seq {
            findings.push(Finding::Gap {
                chain: chain(),
                from: before.seq + 1,
                to: place.seq - 1,
            });
        } else if place.prev != before.hash {
            findings.push(Finding::Unlinked {
                chain: chain(),
                seq: place.seq,
                event: place.event.clone(),
            });
        }
    }
}

pub mod store;

#[cfg(test)]
mod tests;
