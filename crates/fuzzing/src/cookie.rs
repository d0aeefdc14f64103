//! `sealed_cookie`: the module's sealed cookies (`CookieKeys::open`) and chunked cookie assembly
//! (`chunked_cookie`).
//!
//! The first byte picks what the rest is: `Cookie` header lines to read and open, a plaintext to
//! seal and read back, or a plaintext stretched past the chunk limit.

use std::sync::OnceLock;

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use easyauth_module::cookies::{
    CookieKeys, CookieStyle, MAX_CHUNKS, NONCE_COOKIE, SESSION_COOKIE, chunked_cookie, cookie,
};

const NAMES: [&str; 2] = [SESSION_COOKIE, NONCE_COOKIE];

pub fn sealed_cookie(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => request_cookies(rest),
        1 => seal_and_read_back(mode, rest, rest.len()),
        _ => {
            // Long enough to need more chunks than are ever read (3,800 bytes each).
            let [a, b, rest @ ..] = rest else { return };
            let len = (usize::from(*a) << 8 | usize::from(*b)) * 2;
            seal_and_read_back(mode, rest, len);
        }
    }
}

/// Arbitrary `Cookie` headers (one per line): assembly stops at the first missing chunk and at
/// `MAX_CHUNKS`, and nothing in them opens: only `seal` makes values that do.
fn request_cookies(rest: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in rest.split(|&b| b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, value);
        }
    }
    let keys = keys();
    for name in NAMES {
        if let Some(value) = cookie(&headers, name) {
            assert!(keys.open(name, &value).is_none(), "{name}={value:?} opened");
        }
        let Some((joined, count)) = chunked_cookie(&headers, name) else {
            assert!(cookie(&headers, name).is_none());
            continue;
        };
        assert!((1..=MAX_CHUNKS).contains(&count), "{count} chunks");
        let expected: String = (0..count)
            .map(|i| cookie(&headers, &chunk_name(name, i)).expect("every counted chunk exists"))
            .collect();
        assert_eq!(joined, expected);
        if count < MAX_CHUNKS {
            assert!(cookie(&headers, &chunk_name(name, count)).is_none());
        }
        assert!(
            keys.open(name, &joined).is_none(),
            "{name}={joined:?} opened"
        );
    }
    // Whatever the bytes are, as a sealed value they do not open either.
    let text = String::from_utf8_lossy(rest);
    for name in NAMES {
        assert!(keys.open(name, &text).is_none());
    }
}

/// `seal` then `set_chunked` then the browser's `Cookie` header then `chunked_cookie` and `open`
/// gives the plaintext back, for the cookie's own name only; a value cut by the chunk limit, or
/// changed in any one character, does not open.
fn seal_and_read_back(mode: u8, seed: &[u8], len: usize) {
    let plaintext: Vec<u8> = if seed.is_empty() {
        vec![0; len]
    } else {
        seed.iter().copied().cycle().take(len).collect()
    };
    let keys = keys();
    let name = NAMES[usize::from(mode >> 7)];
    let other = NAMES[1 - usize::from(mode >> 7)];
    let sealed = keys.seal(name, &plaintext);
    assert_eq!(keys.open(name, &sealed).as_deref(), Some(&plaintext[..]));
    assert!(keys.open(other, &sealed).is_none(), "opened under {other}");

    let style = CookieStyle {
        secure: mode & 8 != 0,
    };
    let set = style.set_chunked(name, &sealed, 0);
    let pairs: Vec<&str> = set
        .iter()
        .map(|c| c.split(';').next().expect("split yields one item"))
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert(
        COOKIE,
        HeaderValue::from_str(&pairs.join("; ")).expect("sealed values are header-safe"),
    );
    let (joined, count) = chunked_cookie(&headers, name).expect("the first chunk is there");
    if set.len() <= MAX_CHUNKS {
        assert_eq!((joined.as_str(), count), (sealed.as_str(), set.len()));
        assert_eq!(keys.open(name, &joined).as_deref(), Some(&plaintext[..]));
    } else {
        assert_eq!(count, MAX_CHUNKS);
        assert!(
            keys.open(name, &joined).is_none(),
            "a truncated value opened"
        );
    }

    // One character changed anywhere (a different value, not just surrounding whitespace).
    let at = usize::from(seed.first().copied().unwrap_or(0)) * 31 % sealed.len();
    let byte = seed.get(1).copied().unwrap_or(b'A');
    let mut tampered = sealed.clone().into_bytes();
    tampered[at] = byte;
    if let Ok(tampered) = String::from_utf8(tampered)
        && tampered.trim() != sealed
    {
        assert!(
            keys.open(name, &tampered).is_none(),
            "changed at {at} to {byte:#04x} and still opened"
        );
    }
}

fn chunk_name(name: &str, i: usize) -> String {
    if i == 0 {
        name.to_owned()
    } else {
        format!("{name}{i}")
    }
}

/// Fixed keys: a value the fuzzer finds cannot open by chance, and reproducers stay valid.
fn keys() -> &'static CookieKeys {
    static KEYS: OnceLock<CookieKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let store = easyauth_store::MemoryStore::new();
        crate::runtime::block_on(CookieKeys::load(
            Some(&"5e".repeat(32)),
            Some(&"a7".repeat(32)),
            &store,
        ))
        .expect("valid hexadecimal keys")
    })
}
