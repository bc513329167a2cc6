//! GlobalScale: a sidecar that speaks the DynamoDB JSON protocol to unmodified AWS SDKs and
//! sends each request to the healthiest replica region of a Global Table, signed with its
//! own credentials.
//!
//! The request path, in one paragraph: [`server`] accepts HTTP/1.1 and HTTP/2 connections;
//! [`proxy`] reads the target into a [`wire::Operation`] and the body into a lazy
//! [`wire::RequestView`] (refusing what DynamoDB would refuse, in DynamoDB's [`error`]
//! shapes); [`tables`] resolves every table the request names (ARNs, PartiQL statements)
//! once, for the audit table's guard, the allow-lists ([`access`]) and the plan; [`plan`]
//! decides, from the table policies of the current [`snapshot`], which [`rewrite`] steps
//! apply, and parses the request's [`expr`]essions once (every one on a table a step
//! rewrites, the update elsewhere); the request is decoded and rewritten only if a step
//! applies, the steps editing those trees, and its resend safety is read from the same
//! trees; then for each candidate region chosen
//! by [`route`] it is signed and sent ([`upstream`]), the outcome classified against the
//! retry-safety table, and either answered or moved on; the final answer is restored once
//! (the steps' restore halves, over the one walker of key and item sites in [`wire::items`])
//! and replied with a fresh `x-amz-crc32`. [`admin`] serves health, readiness and
//! [`metrics`]. DynamoDB Streams requests take a shorter path ([`streams`]): the same
//! reading and authentication, the policies of the stream's table, one attempt at the
//! streams endpoint of the stream's region, records restored.
//!
//! Beside the path: [`region`] (a region and its health, which routing, the snapshot and
//! the upstream share), [`probe`] (active health checks), [`readiness`] (the start gate
//! behind `/readyz`: credentials, and each managed table accepted by a region), [`call`] (the trait through which
//! the sidecar's own requests, audit shipping and [`schema`] learning, reach the proxy) and
//! [`cli`] (`globalscale audit history`); [`logging`] escapes every value the text log
//! writes, so a client's text cannot forge a line. [`error`] depends on no other module:
//! the error types it wraps and the resend rule live in it, so the module graph has no
//! cycle.

pub mod access;
pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod call;
pub mod cli;
pub mod config;
pub mod digest;
pub mod error;
pub mod expr;
pub mod logging;
pub mod metrics;
pub mod plan;
pub mod probe;
pub mod proxy;
pub mod readiness;
pub mod region;
pub mod rewrite;
pub mod route;
pub mod schema;
pub mod server;
pub mod snapshot;
pub mod status;
pub mod streams;
pub mod tables;
pub mod upstream;
pub mod wire;
