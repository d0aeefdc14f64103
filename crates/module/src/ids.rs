//! Random identifiers (session ids, nonces, PKCE verifiers) and the digests that stand in for
//! them where they must not be stored or shown as they are.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    // Without entropy no identifier is safe to make: fail loudly rather than use zeros.
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source failed");
    bytes
}

/// 32 random bytes, base64url: session ids and PKCE verifiers.
pub(crate) fn random_id() -> String {
    base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        random_bytes(32),
    )
}

/// `n` random bytes in hexadecimal: nonces, state, generated keys.
pub(crate) fn random_hex(n: usize) -> String {
    hex(&random_bytes(n))
}

/// SHA-256 in hexadecimal.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
