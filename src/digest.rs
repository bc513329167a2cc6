//! SHA-256, the one hash the sidecar takes (SigV4's payload and canonical-request hashes,
//! client signature checks, audit item keys and chain links), through ring: its assembly
//! uses the CPU's SHA extensions where there are some and vector code where there are not.

/// The SHA-256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, bytes)
}

/// The SHA-256 digest of `bytes` in lowercase hex, as SigV4 and the audit chain write it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha256(bytes))
}

/// A SHA-256 digest taken over bytes as they arrive.
pub fn sha256_context() -> ring::digest::Context {
    ring::digest::Context::new(&ring::digest::SHA256)
}

#[cfg(test)]
mod tests {
    /// FIPS 180-2's "abc" vector: the helpers are the hash they are named for.
    #[test]
    fn the_abc_vector() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(super::sha256_hex(b"abc"), abc);
        let mut context = super::sha256_context();
        context.update(b"a");
        context.update(b"bc");
        assert_eq!(hex::encode(context.finish()), abc);
    }
}
