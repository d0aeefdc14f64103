//! Small helpers shared by the endpoints: ids, encodings, hashes, time.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// `n` random bytes, base64url-encoded: codes, refresh tokens, session ids.
pub(crate) fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // The system RNG only fails if the OS has no entropy source at all; an all-zero token would
    // be a security bug, so abort rather than continue.
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the operating system's random source failed");
    b64url(&buf)
}

/// Characters of a device flow's user code: upper-case letters and digits without the ones people
/// confuse (0/O, 1/I/L).
const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
pub(crate) const USER_CODE_LENGTH: usize = 9;

/// A user code such as `GQ5ZT3B7C`: what a person types on the device-code page.
pub(crate) fn random_user_code() -> String {
    let mut out = String::with_capacity(USER_CODE_LENGTH);
    let n = USER_CODE_ALPHABET.len();
    // Rejection sampling keeps every character equally likely.
    let limit = (256 / n * n) as u8;
    while out.len() < USER_CODE_LENGTH {
        let mut buf = [0u8; 16];
        // See `random_token`: no entropy at all is not something to continue from.
        #[allow(clippy::expect_used)]
        SystemRandom::new()
            .fill(&mut buf)
            .expect("the operating system's random source failed");
        for b in buf {
            if b < limit && out.len() < USER_CODE_LENGTH {
                out.push(USER_CODE_ALPHABET[usize::from(b) % n] as char);
            }
        }
    }
    out
}

/// A user code as typed (any case, spaces or dashes) in its canonical form.
pub(crate) fn normalize_user_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .take(64)
        .collect()
}

pub(crate) fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha256(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Milliseconds since the epoch (polling intervals are measured to the millisecond).
pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// `2024-01-01 12:00:00Z`, the form Entra uses in error bodies.
pub(crate) fn entra_timestamp(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    t.format(f).unwrap_or_default()
}

/// Constant-time equality for secrets and digests.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// At most `max` characters of client input, for echoing it in an error description.
pub(crate) fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_nine_unambiguous_characters() {
        for _ in 0..200 {
            let code = random_user_code();
            assert_eq!(code.len(), USER_CODE_LENGTH);
            assert!(
                code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)),
                "{code}"
            );
            assert!(!code.contains(['0', 'O', '1', 'I', 'L']), "{code}");
        }
        assert_ne!(random_user_code(), random_user_code());
        assert_eq!(normalize_user_code(" gq5z-t3b 7c\n"), "GQ5ZT3B7C");
    }
}
