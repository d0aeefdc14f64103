//! Cookies the module issues: the session (`AppServiceAuthSession`, split into numbered cookies
//! when large) and the sign-in `Nonce` cookie, sealed with AES-256-GCM. The cookie's name is the
//! associated data, so one kind of cookie can never be replayed as another.
//!
//! Keys come from the `WEBSITE_AUTH_ENCRYPTION_KEY` / `WEBSITE_AUTH_SIGNING_KEY` app settings
//! (instances sharing them share sessions, as on App Service) or are generated once and kept in
//! the store.
//!
//! Request cookies are parsed by the `cookie` crate. Sealing stays ours rather than the crate's
//! private jar: the jar writes padded standard base64 where the cookies already issued carry
//! unpadded base64url, so switching would sign out every session at upgrade, and the jar would
//! add a second AES-GCM implementation next to aws-lc-rs.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::Cookie;
use easyauth_store::{Store, StoreError};

use crate::ids::random_hex;

/// The session cookie (and its continuations `AppServiceAuthSession1`, `2`...).
pub const SESSION_COOKIE: &str = "AppServiceAuthSession";
/// The cookie that carries a sign-in in progress.
pub const NONCE_COOKIE: &str = "Nonce";
/// Cookie values above this are split; browsers cap a cookie (name + value) near 4,096 bytes.
const CHUNK: usize = 3800;
/// Chunks (the first cookie and its continuations) read at most; a session never needs more.
pub const MAX_CHUNKS: usize = 16;

/// The keys behind every sealed value.
pub struct CookieKeys {
    aead: LessSafeKey,
    /// Raw key for `X-ZUMO-AUTH` tokens (HS256).
    pub(crate) signing: Vec<u8>,
    rng: SystemRandom,
}

impl std::fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKeys(..)")
    }
}

/// Why the cookie keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// An app setting holds no 32-byte hexadecimal key.
    #[error("{0} must be 64 hexadecimal characters (32 bytes)")]
    BadAppSetting(&'static str),
    /// The store that keeps generated keys failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..32)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

impl CookieKeys {
    /// Keys from the app settings, or generated once per store.
    pub async fn load(
        encryption: Option<&str>,
        signing: Option<&str>,
        store: &dyn Store,
    ) -> Result<CookieKeys, KeyError> {
        let encryption = match encryption {
            Some(v) => v.to_owned(),
            None => {
                store
                    .get_or_create_setting("easyauth.encryption-key", &random_hex(32))
                    .await?
            }
        };
        let signing = match signing {
            Some(v) => v.to_owned(),
            None => {
                store
                    .get_or_create_setting("easyauth.signing-key", &random_hex(32))
                    .await?
            }
        };
        let enc =
            from_hex(&encryption).ok_or(KeyError::BadAppSetting("WEBSITE_AUTH_ENCRYPTION_KEY"))?;
        let sig = from_hex(&signing).ok_or(KeyError::BadAppSetting("WEBSITE_AUTH_SIGNING_KEY"))?;
        let unbound = UnboundKey::new(&AES_256_GCM, &enc)
            .map_err(|_| KeyError::BadAppSetting("WEBSITE_AUTH_ENCRYPTION_KEY"))?;
        Ok(CookieKeys {
            aead: LessSafeKey::new(unbound),
            signing: sig,
            rng: SystemRandom::new(),
        })
    }

    /// Encrypts and authenticates `plaintext` for the cookie called `name`.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        #[allow(clippy::expect_used)]
        self.rng
            .fill(&mut nonce)
            .expect("the operating system's random source failed");
        let mut buffer = plaintext.to_vec();
        // Sealing only fails for inputs larger than GCM allows, which cookies never are.
        #[allow(clippy::expect_used)]
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut buffer,
            )
            .expect("AES-GCM seal");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The plaintext, if `sealed` was made by `seal` for the same cookie name with these keys.
    pub fn open(&self, name: &str, sealed: &str) -> Option<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD.decode(sealed.trim()).ok()?;
        if raw.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// Attributes shared by the module's cookies.
#[derive(Debug, Clone, Copy)]
pub struct CookieStyle {
    /// The site is served over https: `Secure; SameSite=None` (as App Service), else `Lax`.
    pub secure: bool,
}

impl CookieStyle {
    fn attributes(self) -> &'static str {
        if self.secure {
            "; Path=/; Secure; HttpOnly; SameSite=None"
        } else {
            "; Path=/; HttpOnly; SameSite=Lax"
        }
    }

    /// `Set-Cookie` values for `value` under `name`, split into `name`, `name1`, `name2`... and
    /// clearing any continuation cookies an earlier, longer value left behind.
    pub fn set_chunked(self, name: &str, value: &str, previous_chunks: usize) -> Vec<String> {
        let chunks: Vec<&str> = value
            .as_bytes()
            .chunks(CHUNK)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect();
        let mut out: Vec<String> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{}={c}{}", chunk_name(name, i), self.attributes()))
            .collect();
        for i in chunks.len()..previous_chunks.max(chunks.len()) {
            out.push(self.clear(&chunk_name(name, i)));
        }
        out
    }

    /// A `Set-Cookie` value for one cookie.
    pub fn set(self, name: &str, value: &str) -> String {
        format!("{name}={value}{}", self.attributes())
    }

    /// A `Set-Cookie` that deletes `name`.
    pub fn clear(self, name: &str) -> String {
        format!(
            "{name}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0{}",
            self.attributes()
        )
    }
}

fn chunk_name(name: &str, i: usize) -> String {
    if i == 0 {
        name.to_owned()
    } else {
        format!("{name}{i}")
    }
}

/// Reads one cookie's value from the request (the first one of that name).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Reads a chunked cookie: `name`, then `name1`, `name2`... until one is missing. Returns the
/// joined value and how many chunks there were.
pub fn chunked_cookie(headers: &HeaderMap, name: &str) -> Option<(String, usize)> {
    let mut value = cookie(headers, name)?;
    let mut count = 1;
    while count < MAX_CHUNKS {
        match cookie(headers, &chunk_name(name, count)) {
            Some(more) => value.push_str(&more),
            None => break,
        }
        count += 1;
    }
    Some((value, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use easyauth_store::MemoryStore;

    #[tokio::test]
    async fn sealed_values_open_only_with_the_same_name_and_keys() {
        let store = MemoryStore::new();
        let keys = CookieKeys::load(None, None, &store).await.expect("keys");
        let sealed = keys.seal(SESSION_COOKIE, b"hello");
        assert_eq!(
            keys.open(SESSION_COOKIE, &sealed).as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(
            keys.open(NONCE_COOKIE, &sealed),
            None,
            "bound to the cookie name"
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            keys.open(
                SESSION_COOKIE,
                std::str::from_utf8(&tampered).expect("ascii")
            ),
            None
        );
        let same_store = CookieKeys::load(None, None, &store).await.expect("keys");
        assert!(
            same_store.open(SESSION_COOKIE, &sealed).is_some(),
            "keys persist per store"
        );
        let other = CookieKeys::load(Some(&"a".repeat(64)), Some(&"b".repeat(64)), &store)
            .await
            .expect("keys");
        assert_eq!(other.open(SESSION_COOKIE, &sealed), None);
        assert!(CookieKeys::load(Some("short"), None, &store).await.is_err());
    }

    #[test]
    fn cookie_headers_are_parsed_pair_by_pair() {
        let mut headers = HeaderMap::new();
        headers.append(
            axum::http::header::COOKIE,
            HeaderValue::from_static("junk; a=1;  AppServiceAuthSession=x=y ;b=2"),
        );
        headers.append(
            axum::http::header::COOKIE,
            HeaderValue::from_static("Nonce=n1; AppServiceAuthSession=second"),
        );
        assert_eq!(
            cookie(&headers, SESSION_COOKIE).as_deref(),
            Some("x=y"),
            "the first of that name, whitespace trimmed, `=` kept in the value"
        );
        assert_eq!(cookie(&headers, NONCE_COOKIE).as_deref(), Some("n1"));
        assert_eq!(
            cookie(&headers, "junk"),
            None,
            "a pair without `=` is no cookie"
        );
        assert_eq!(
            cookie(&headers, "appserviceauthsession"),
            None,
            "names are exact"
        );
    }

    #[test]
    fn large_values_are_split_and_rejoined() {
        let style = CookieStyle { secure: true };
        let value = "x".repeat(9000);
        let set = style.set_chunked(SESSION_COOKIE, &value, 4);
        assert_eq!(set.len(), 4, "3 chunks plus clearing the stale 4th");
        assert!(
            set[0].starts_with("AppServiceAuthSession=")
                && set[1].starts_with("AppServiceAuthSession1=")
        );
        assert!(set[3].starts_with("AppServiceAuthSession3=;"));
        assert!(set[0].contains("Secure; HttpOnly; SameSite=None"));
        let mut headers = HeaderMap::new();
        let pairs: Vec<String> = set[..3]
            .iter()
            .map(|c| c.split(';').next().unwrap_or("").to_owned())
            .collect();
        headers.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_str(&pairs.join("; ")).expect("header"),
        );
        let (joined, n) = chunked_cookie(&headers, SESSION_COOKIE).expect("cookie");
        assert_eq!((joined, n), (value, 3));
    }
}
