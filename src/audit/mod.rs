//! The audit trail: every accepted write leaves a record that must reach the audit table even
//! if the sidecar is killed or the table is unreachable for a while. It sits after the forward
//! stage of the request path: [`record`] builds the records of a write from the request as sent
//! and the region's answer, the [`spool`] makes them durable on local disk before the client is
//! answered, and the [`shipper`] drains the spool's oldest records to the audit table,
//! acknowledging them so their space is reclaimed; or, in [`atomic`] mode, the records travel in
//! the write's own transaction. `globalscale audit history` (the `cli` module) reads one
//! item's records back for an operator.

pub mod atomic;
mod auditor;
pub mod background;
pub mod chain;
pub mod intent;
pub mod quarantine;
pub mod record;
pub mod recovery;
pub mod returns;
pub mod shipper;
pub mod spool;

pub use auditor::{ANONYMOUS, Auditor, Unavailable, Waiting, principal};
