//! The one-shot commands of the binary beside serving: `globalscale audit history` and
//! `globalscale audit verify`. They
//! build the proxy without listeners ([`App::client`](crate::app::App::client)) and send
//! the sidecar's own requests through it.

pub mod history;
pub mod verify;
