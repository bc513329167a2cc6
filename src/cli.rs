//! The one-shot commands of the binary beside serving: `globalscale audit history`,
//! `globalscale audit verify` and `globalscale check-config`. The audit commands build the
//! proxy without listeners ([`App::client`](crate::app::App::client)) and send the
//! sidecar's own requests through it; `check-config` only reads the loaded config.

pub mod check_config;
pub mod history;
pub mod verify;
