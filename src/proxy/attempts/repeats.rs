//! The poison request: one whose every attempt a region answers with the same server error
//! (a body that trips a bug in the region, say). Its failures are the request's, not the
//! region's: the attempt loop stops resending it once two attempts were answered alike
//! ([`Progress::settle`](super::progress::Progress)), and a region's health counts it once,
//! however often it or its resends (the client's own retries included) come back: ejecting
//! a region takes failures of different requests.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};

use http::StatusCode;

use crate::proxy::Forward;

/// What an error answer says, to tell one repeated: its status and DynamoDB error name.
pub(crate) type ErrorAnswer = (StatusCode, Option<String>);

/// The error answer of a region's reply.
pub(crate) fn error_answer(status: StatusCode, body: &[u8]) -> ErrorAnswer {
    (status, crate::wire::error_name(body))
}

/// Per region, the request whose server error was the last one its health counted.
#[derive(Default)]
pub(crate) struct Repeats {
    last: Mutex<HashMap<String, u64>>,
}

impl Repeats {
    /// Whether a server error of `req` in `region` counts for the region's health: not when
    /// the last one counted there was of the same request (the same operation and body).
    pub(crate) fn counts(&self, region: &str, req: &Forward<'_>) -> bool {
        let fingerprint = fingerprint(req);
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match last.get_mut(region) {
            Some(previous) if *previous == fingerprint => false,
            Some(previous) => {
                *previous = fingerprint;
                true
            }
            None => {
                last.insert(region.to_owned(), fingerprint);
                true
            }
        }
    }
}

/// The request as sent, hashed: a fixed seed, since it is only compared within the process.
fn fingerprint(req: &Forward<'_>) -> u64 {
    foldhash::fast::FixedState::default()
        .hash_one((req.outbound.target.as_bytes(), &req.outbound.body[..]))
}
