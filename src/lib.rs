//! GlobalScale: a sidecar that speaks the DynamoDB JSON protocol to unmodified AWS SDKs and
//! sends each request to the healthiest replica region of a Global Table, signed with its
//! own credentials.
//!
//! The request path, in one paragraph: [`server`] accepts HTTP/1.1 and HTTP/2 connections;
//! [`proxy`] reads the target into a [`wire::Operation`] and the body into JSON (refusing
//! what DynamoDB would refuse, in DynamoDB's [`error`] shapes), plans with the current
//! [`snapshot`] of the config, runs the pure [`rewrite`] steps, then for each candidate
//! region chosen by [`route`] signs ([`upstream::sign`]), sends ([`upstream`]), classifies
//! the outcome against the retry-safety table and either answers (with a fresh
//! `x-amz-crc32`) or moves on. [`admin`] serves health, readiness and [`metrics`].

pub mod admin;
pub mod app;
pub mod config;
pub mod error;
pub mod expr;
pub mod metrics;
pub mod plan;
pub mod proxy;
pub mod rewrite;
pub mod route;
pub mod schema;
pub mod server;
pub mod snapshot;
pub mod upstream;
pub mod wire;
