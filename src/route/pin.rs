//! Transactions pinned to a region. A `ClientRequestToken` makes a transaction idempotent
//! for ten minutes in the region that received it, and only there. Once an attempt of a
//! non-idempotent transaction may have been applied in a region, every later attempt with
//! the same token goes to that region: the resends of this request, and the client's own
//! retries (the AWS SDKs send the same token again), which arrive as new requests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long DynamoDB remembers a token.
const TOKEN_LIFETIME: Duration = Duration::from_mins(10);
/// Tokens remembered at most; at a thousand ambiguous transactions a second something else
/// is wrong, and a token not remembered falls back to the per-request pin.
const MAX_PINS: usize = 50_000;
/// How often a full map is swept of expired tokens.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Token → region of a possibly applied attempt; shared by every request, kept on reload.
#[derive(Debug, Default)]
pub struct TransactionPins {
    pins: Mutex<Pins>,
}

#[derive(Debug, Default)]
struct Pins {
    by_token: HashMap<String, (String, Instant)>,
    /// When a full map may next be swept of expired tokens: a sweep walks every token, so
    /// a full map is swept at most once a second, not on every transaction.
    next_sweep: Option<Instant>,
}

impl TransactionPins {
    /// Records that an attempt with `token` may have been applied in `region`. The first
    /// region recorded stays: that is where the token is known.
    pub fn pin(&self, token: &str, region: &str) {
        let now = Instant::now();
        let mut pins = self.lock();
        if let Some((_, at)) = pins.by_token.get(token)
            && now.duration_since(*at) < TOKEN_LIFETIME
        {
            return;
        }
        if pins.by_token.len() >= MAX_PINS {
            if pins.next_sweep.is_some_and(|next| now < next) {
                return;
            }
            pins.next_sweep = Some(now + SWEEP_INTERVAL);
            pins.by_token
                .retain(|_, (_, at)| now.duration_since(*at) < TOKEN_LIFETIME);
            if pins.by_token.len() >= MAX_PINS {
                tracing::warn!("too many pinned transactions; not remembering more for a second");
                return;
            }
        }
        pins.by_token
            .insert(token.to_owned(), (region.to_owned(), now));
    }

    /// The region a transaction with `token` must go to, if an earlier attempt may have been
    /// applied there within the token's lifetime.
    pub fn region_of(&self, token: &str) -> Option<String> {
        let pins = self.lock();
        pins.by_token
            .get(token)
            .filter(|(_, at)| at.elapsed() < TOKEN_LIFETIME)
            .map(|(region, _)| region.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pins> {
        // Plain data: usable after a panic elsewhere.
        self.pins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_first_region_holds_for_the_token_lifetime() {
        let pins = TransactionPins::default();
        assert_eq!(pins.region_of("t"), None);
        pins.pin("t", "us-east-1");
        pins.pin("t", "us-west-2");
        assert_eq!(pins.region_of("t").as_deref(), Some("us-east-1"));
        tokio::time::advance(TOKEN_LIFETIME).await;
        assert_eq!(
            pins.region_of("t"),
            None,
            "DynamoDB has forgotten the token"
        );
        pins.pin("t", "us-west-2");
        assert_eq!(pins.region_of("t").as_deref(), Some("us-west-2"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_map_is_swept_once_a_second_and_takes_tokens_again_once_they_expire() {
        let pins = TransactionPins::default();
        for i in 0..MAX_PINS {
            pins.pin(&format!("t{i}"), "us-east-1");
        }
        tokio::time::advance(TOKEN_LIFETIME.saturating_sub(Duration::from_millis(500))).await;
        pins.pin("late", "us-east-1");
        assert_eq!(
            pins.region_of("late"),
            None,
            "full, nothing expired: not remembered"
        );
        tokio::time::advance(Duration::from_millis(600)).await;
        // Expired now, but within a second of the last sweep: not swept again.
        pins.pin("late", "us-east-1");
        assert_eq!(pins.region_of("late"), None);
        tokio::time::advance(Duration::from_millis(400)).await;
        pins.pin("late", "us-west-2");
        assert_eq!(pins.region_of("late").as_deref(), Some("us-west-2"));
        assert_eq!(
            pins.lock().by_token.len(),
            1,
            "the expired tokens were swept"
        );
    }
}
