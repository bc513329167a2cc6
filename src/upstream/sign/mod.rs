//! SigV4 for every attempt, with the sidecar's own credentials, for the region the attempt
//! goes to (the region is part of the credential scope, so a moved request is signed again).
//!
//! Credentials come from the config or the AWS default chain (env, web identity/IRSA, ECS,
//! IMDS) and are refreshed ahead of their expiry, so no request is signed with keys about
//! to lapse.

mod direct;

pub use crate::error::SignError;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4::{self, generate_signing_key};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::sync::Mutex;

use crate::config::CredentialsConfig;
use crate::error::Chain;

/// Credential fetches by every signer of the process (a reload may replace the signer, the
/// count goes on): successes and failures, for `globalscale_credential_refreshes_total`.
static REFRESHES: (std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64) = (
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
);
/// After the credential chain fails, requests fail fast for this long instead of each
/// waiting on the chain (IMDS timeouts take seconds).
const FAILURE_HOLD: Duration = Duration::from_secs(2);

/// Credentials this close to expiry are replaced before they are used again.
const REFRESH_AHEAD: Duration = Duration::from_mins(5);

/// The sidecar's credentials, cached and refreshed ahead of expiry.
#[derive(Clone)]
pub struct Signer {
    inner: Arc<SignerInner>,
}

struct SignerInner {
    provider: SharedCredentialsProvider,
    /// Read on every attempt, without a lock; written on refresh.
    cached: ArcSwapOption<Credentials>,
    /// Signing keys derived from the cached credentials, per day and region.
    keys: ArcSwap<Vec<SigningKey>>,
    /// One refresh at a time: a burst of requests must not stampede IMDS or STS. Holds the
    /// latest failure, answered again while it is recent.
    refreshing: Mutex<Option<(std::time::Instant, Arc<CredentialsError>)>>,
}

impl Signer {
    /// `region` is where the default chain calls STS (web identity / IRSA) when the
    /// environment names no region.
    pub async fn from_config(config: &CredentialsConfig, region: &str) -> Self {
        let provider = match config {
            CredentialsConfig::Static {
                access_key_id,
                secret_access_key,
                session_token,
            } => SharedCredentialsProvider::new(Credentials::from_keys(
                access_key_id,
                secret_access_key,
                session_token.clone(),
            )),
            CredentialsConfig::DefaultChain => {
                let region = aws_config::default_provider::region::DefaultRegionChain::builder()
                    .build()
                    .region()
                    .await
                    .unwrap_or_else(|| aws_config::Region::new(region.to_owned()));
                SharedCredentialsProvider::new(
                    aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                        .region(region)
                        .build()
                        .await,
                )
            }
        };
        Self::new(provider)
    }

    pub fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            inner: Arc::new(SignerInner {
                provider,
                cached: ArcSwapOption::empty(),
                keys: ArcSwap::default(),
                refreshing: Mutex::new(None),
            }),
        }
    }

    /// Fetches of credentials from the provider so far, in this process: `(ok, failed)`.
    pub fn refreshes() -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (REFRESHES.0.load(Relaxed), REFRESHES.1.load(Relaxed))
    }

    /// Current credentials, fetched again when missing or close to expiry.
    pub async fn credentials(&self) -> Result<Credentials, SignError> {
        if let Some(creds) = fresh(self.inner.cached.load().as_deref()) {
            return Ok(creds);
        }
        let mut last_failure = self.inner.refreshing.lock().await;
        // Another task may have refreshed while this one waited for the lock.
        if let Some(creds) = fresh(self.inner.cached.load().as_deref()) {
            return Ok(creds);
        }
        let recent = last_failure
            .as_ref()
            .filter(|(at, _)| at.elapsed() < FAILURE_HOLD)
            .map(|(_, error)| Arc::clone(error));
        let asked_the_chain = recent.is_none();
        let result = match recent {
            Some(error) => Err(error),
            None => self
                .inner
                .provider
                .provide_credentials()
                .await
                .map_err(Arc::new),
        };
        if asked_the_chain {
            let counter = if result.is_ok() {
                &REFRESHES.0
            } else {
                &REFRESHES.1
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        match result {
            Ok(creds) => {
                *last_failure = None;
                self.inner.cached.store(Some(Arc::new(creds.clone())));
                Ok(creds)
            }
            Err(error) => {
                if asked_the_chain {
                    *last_failure = Some((std::time::Instant::now(), Arc::clone(&error)));
                }
                // A failed early refresh is not an outage: keys that have not expired yet
                // still sign, and a later request tries the refresh again.
                let cached = self.inner.cached.load_full().map(|c| (*c).clone());
                match cached.filter(|c| c.expiry().is_none_or(|t| t > SystemTime::now())) {
                    Some(creds) => {
                        tracing::warn!(
                            error = %Chain::for_log(&*error),
                            "credential refresh failed; using keys that are still valid"
                        );
                        Ok(creds)
                    }
                    None => Err(SignError::Credentials(error)),
                }
            }
        }
    }

    /// Signs `request` (whose body is `body`) for `region`, replacing any signature it had.
    pub async fn sign(
        &self,
        request: &mut Request<Full<Bytes>>,
        body: &[u8],
        region: &str,
    ) -> Result<(), SignError> {
        let creds = self.credentials().await?;
        let now = SystemTime::now();
        let key = self.signing_key(&creds, now, region);
        match direct::sign(request, body, &creds, region, now, &key) {
            Some(()) => Ok(()),
            None => sign_request(request, body, &creds, region, now),
        }
    }

    /// The signing key for `creds` on the day of `time` in `region`: derived (four HMACs)
    /// once, and kept as an HMAC key ready to sign, its padded states already hashed (two
    /// SHA-256 blocks a request when it was made per request); then read without a lock.
    /// Keys of other credentials or days long gone are dropped when a new one is kept, so
    /// there are at most a few per region.
    fn signing_key(&self, creds: &Credentials, time: SystemTime, region: &str) -> ring::hmac::Key {
        let day = crate::auth::time::day_number(time);
        let same_keys = |k: &SigningKey| {
            *k.access_key_id == *creds.access_key_id()
                && *k.secret_access_key == *creds.secret_access_key()
        };
        if let Some(kept) = self
            .inner
            .keys
            .load()
            .iter()
            .find(|k| k.day == day && *k.region == *region && same_keys(k))
        {
            return kept.key.clone();
        }
        let derived = generate_signing_key(creds.secret_access_key(), time, region, "dynamodb");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref());
        let new = SigningKey {
            access_key_id: creds.access_key_id().into(),
            secret_access_key: creds.secret_access_key().into(),
            day,
            region: region.into(),
            key: key.clone(),
        };
        self.inner.keys.rcu(|keys| {
            let mut kept: Vec<SigningKey> = keys
                .iter()
                .filter(|k| same_keys(k) && k.day.abs_diff(day) <= 1)
                .filter(|k| !(k.day == day && *k.region == *region))
                .cloned()
                .collect();
            kept.push(new.clone());
            kept
        });
        key
    }
}

/// A derived signing key and what it is good for.
#[derive(Clone)]
struct SigningKey {
    access_key_id: Box<str>,
    secret_access_key: Box<str>,
    day: i64,
    region: Box<str>,
    key: ring::hmac::Key,
}

fn fresh(creds: Option<&Credentials>) -> Option<Credentials> {
    let creds = creds?;
    match creds.expiry() {
        Some(expiry) if expiry <= SystemTime::now() + REFRESH_AHEAD => None,
        _ => Some(creds.clone()),
    }
}

/// Signs with the given credentials at the given time: pure, so it is tested against
/// signatures computed by an independent implementation.
pub fn sign_request(
    request: &mut Request<Full<Bytes>>,
    body: &[u8],
    creds: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), SignError> {
    let identity: Identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("dynamodb")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(SignError::Params)?
        .into();
    let uri = request.uri().to_string();
    let headers = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers,
        SignableBody::Bytes(body),
    )
    .map_err(SignError::Sign)?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(SignError::Sign)?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};

    fn request(body: &'static [u8]) -> Request<Full<Bytes>> {
        Request::post("http://127.0.0.1:8001/")
            .header(HOST, "127.0.0.1:8001")
            .header(CONTENT_TYPE, "application/x-amz-json-1.0")
            .header("x-amz-target", "DynamoDB_20120810.ListTables")
            .body(Full::new(Bytes::from_static(body)))
            .unwrap()
    }

    #[test]
    fn matches_botocore_for_a_fixed_request() {
        // Expected value computed with botocore.auth.SigV4Auth for the same request, keys,
        // region and timestamp (20250101T000000Z).
        let mut req = request(b"{}");
        let creds = Credentials::from_keys(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
        );
        let time = SystemTime::UNIX_EPOCH + Duration::from_hours(482_136);
        sign_request(&mut req, b"{}", &creds, "us-west-2", time).unwrap();
        let auth = req.headers()[AUTHORIZATION].to_str().unwrap();
        assert_eq!(auth, EXPECTED_AUTHORIZATION);
        assert_eq!(req.headers()["x-amz-date"], "20250101T000000Z");
    }

    #[test]
    fn session_token_travels_with_the_signature() {
        let mut req = request(b"{}");
        let creds = Credentials::from_keys("AKID", "secret", Some("TOKEN".into()));
        sign_request(&mut req, b"{}", &creds, "eu-central-1", SystemTime::now()).unwrap();
        assert_eq!(req.headers()["x-amz-security-token"], "TOKEN");
        let auth = req.headers()[AUTHORIZATION].to_str().unwrap();
        assert!(
            auth.contains("/eu-central-1/dynamodb/aws4_request"),
            "{auth}"
        );
    }

    /// A provider whose `n`th call (from 0) answers `answer(n)`.
    fn scripted(
        answer: impl Fn(usize) -> aws_credential_types::provider::Result + Send + Sync + 'static,
    ) -> Signer {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let answer = std::sync::Arc::new(answer);
        Signer::new(SharedCredentialsProvider::new(
            aws_credential_types::credential_fn::provide_credentials_fn(move || {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = std::sync::Arc::clone(&answer);
                async move { answer(n) }
            }),
        ))
    }

    /// Keys that expire in one minute: inside the refresh window, so never reused.
    fn expiring(key: &str) -> Credentials {
        let expiry = SystemTime::now() + Duration::from_mins(1);
        Credentials::new(key, "s", None, Some(expiry), "test")
    }

    #[tokio::test]
    async fn expiring_credentials_are_fetched_again() {
        let signer = scripted(|n| Ok(expiring(&format!("AKID{n}"))));
        assert_eq!(signer.credentials().await.unwrap().access_key_id(), "AKID0");
        assert_eq!(signer.credentials().await.unwrap().access_key_id(), "AKID1");
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_keys_that_have_not_expired() {
        let signer = scripted(|n| match n {
            0 => Ok(expiring("AKID")),
            _ => Err(
                aws_credential_types::provider::error::CredentialsError::not_loaded("IMDS down"),
            ),
        });
        signer.credentials().await.unwrap();
        // Inside the refresh window the refresh fails, but the keys are still good.
        assert_eq!(signer.credentials().await.unwrap().access_key_id(), "AKID");
    }

    #[tokio::test]
    async fn a_failing_chain_is_not_asked_again_at_once() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&calls);
        let signer = scripted(move |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(aws_credential_types::provider::error::CredentialsError::not_loaded("no IMDS"))
        });
        assert!(signer.credentials().await.is_err());
        assert!(signer.credentials().await.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    const EXPECTED_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-west-2/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=8037b5b41b33925c1a74480319bb6b418ec5ffa557945aae6ccbceb0a2d9fde0";
}
