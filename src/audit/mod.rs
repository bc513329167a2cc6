//! The audit trail: every accepted write leaves a record that must reach the audit table even
//! if the sidecar is killed or the table is unreachable for a while. It sits after the reply
//! stage of the request path: the [`spool`] makes a record durable on local disk before the
//! client is answered, and a shipper (later) drains the spool's oldest records to the table,
//! acknowledging them so their space is reclaimed. [`history`] reads one item's records back
//! for an operator.

pub mod history;
pub mod spool;
