//! Sealed positions: how a page that stopped on an item of another namespace is shown to the
//! client without showing that item's key.
//!
//! A Scan or an index Query of a prefixed table can stop on a foreign item (DynamoDB applies
//! `Limit` before the namespace filter), and its `LastEvaluatedKey` then holds that item's
//! partition key, sort key and index keys. The restore half replaces the whole map with one
//! attribute, the table's partition key, holding [`MARKER`] and a token: the stored key as
//! JSON, sealed with AES-256-GCM under a random 96-bit nonce (a repeat stays negligible far
//! past what a process issues; NIST bounds such a key at 2^32 seals). The associated data
//! names the table and the prefix, so a token opens only where it was issued. Handed back as
//! `ExclusiveStartKey`, the token is opened and the whole map becomes the stored key again;
//! a token that does not open is refused as DynamoDB refuses a bad starting key.
//!
//! The key is made at first use and lives in memory only: a foreign position survives just
//! the process that issued it. After a restart (or on another replica of the sidecar) such a
//! position is refused with a `ValidationException`, and the client starts its Scan or Query
//! again. Positions in the client's own namespace are plain keys and never expire.
//!
//! [`seal_with`] and [`open_with`] are pure (key and nonce come in); [`seal`] and [`open`]
//! add the process key and a fresh nonce, the one place a rewrite step draws randomness.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value, json};

use crate::plan::KeyPrefix;

/// Opens the partition key value of a sealed position. The NUL keeps it apart from any key
/// a client would plausibly write; a key that does start with it is only ever prefixed.
pub(crate) const MARKER: &str = "\u{0}globalscale-foreign-position:";

/// Tells this layout of the associated data from any later one.
const CONTEXT: &[u8] = b"globalscale position v1";

/// Why a position could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PositionError {
    /// The client's token is not one this process sealed for this table and namespace:
    /// altered, truncated, forged, from another table, or from before a restart.
    #[error(
        "The provided starting key is invalid: it is not a position this sidecar issued for \
         this table, or it was issued before the sidecar restarted; start again without \
         ExclusiveStartKey"
    )]
    Invalid,
    /// No position could be sealed: the system's random source failed, or ring refused.
    #[error("a position could not be sealed: {0}")]
    Unsealable(&'static str),
}

/// The position shown for the stored key `stored`: `{<partition key>: {"S": MARKER token}}`.
pub(crate) fn seal(
    prefix: &KeyPrefix,
    stored: &Map<String, Value>,
) -> Result<Map<String, Value>, PositionError> {
    let mut nonce = [0; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| PositionError::Unsealable("no random nonce"))?;
    seal_with(process_key()?, nonce, prefix, stored)
}

/// The stored key a token (the partition key value after [`MARKER`]) was sealed from.
pub(crate) fn open(prefix: &KeyPrefix, token: &str) -> Result<Map<String, Value>, PositionError> {
    // Without a key nothing was ever sealed, so no token can be genuine.
    let key = process_key().map_err(|_| PositionError::Invalid)?;
    open_with(key, prefix, token)
}

/// [`seal`] with the key and the nonce given.
fn seal_with(
    key: &LessSafeKey,
    nonce: [u8; NONCE_LEN],
    prefix: &KeyPrefix,
    stored: &Map<String, Value>,
) -> Result<Map<String, Value>, PositionError> {
    let mut sealed = Value::Object(stored.clone()).to_string().into_bytes();
    let aad = associated_data(prefix);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&aad),
        &mut sealed,
    )
    .map_err(|_| PositionError::Unsealable("the key is too long to seal"))?;
    let mut token = nonce.to_vec();
    token.append(&mut sealed);
    let shown = format!("{MARKER}{}", URL_SAFE_NO_PAD.encode(token));
    Ok(Map::from_iter([(
        prefix.attribute.clone(),
        json!({ "S": shown }),
    )]))
}

/// [`open`] with the key given.
fn open_with(
    key: &LessSafeKey,
    prefix: &KeyPrefix,
    token: &str,
) -> Result<Map<String, Value>, PositionError> {
    let mut bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| PositionError::Invalid)?;
    if bytes.len() < NONCE_LEN {
        return Err(PositionError::Invalid);
    }
    let mut sealed = bytes.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| PositionError::Invalid)?;
    let aad = associated_data(prefix);
    let plain = key
        .open_in_place(nonce, Aad::from(&aad), &mut sealed)
        .map_err(|_| PositionError::Invalid)?;
    match serde_json::from_slice(plain) {
        Ok(Value::Object(stored)) => Ok(stored),
        _ => Err(PositionError::Invalid),
    }
}

/// The table and the prefix a token is bound to, each with its length so no two pairs
/// give the same bytes.
fn associated_data(prefix: &KeyPrefix) -> Vec<u8> {
    let mut aad = CONTEXT.to_vec();
    for part in [&prefix.table, &prefix.prefix] {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

/// This process's sealing key, made at first use.
fn process_key() -> Result<&'static LessSafeKey, PositionError> {
    static KEY: OnceLock<LessSafeKey> = OnceLock::new();
    if let Some(key) = KEY.get() {
        return Ok(key);
    }
    let mut bytes = [0; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PositionError::Unsealable("no random key"))?;
    let key = aes_key(&bytes)?;
    // Two first uses at once each make a key; one wins and both use it.
    Ok(KEY.get_or_init(|| key))
}

fn aes_key(bytes: &[u8; 32]) -> Result<LessSafeKey, PositionError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| PositionError::Unsealable("AES-256-GCM refused the key"))
}

#[cfg(test)]
mod tests;
