//! `form_params`: the identity provider's form and query parser (`Params::parse`).

use std::collections::HashSet;

use easyauth_entra::EntraError;
use easyauth_entra::endpoints::form::{MAX_FORM_BYTES, MAX_PARAMETERS, Params};

/// Checks `Params::parse` against `form_urlencoded` (the decoding it promises, with repeats and
/// counts refused in the documented order) and that `encode` round-trips through `parse`.
pub fn form_params(data: &[u8]) {
    let result = Params::parse(data);
    if data.len() > MAX_FORM_BYTES {
        assert!(
            matches!(result, Err(EntraError::RequestTooLarge { .. })),
            "an oversized form must be refused before decoding: {result:?}"
        );
        return;
    }

    // The reference: plain decoding, then the first repeat and the count, in parse order.
    let reference: Vec<(String, String)> = form_urlencoded::parse(data)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut seen = HashSet::new();
    let first_repeat = reference.iter().position(|(k, _)| !seen.insert(k.as_str()));
    match (&result, first_repeat) {
        (Err(EntraError::Malformed(m)), Some(i)) if i < MAX_PARAMETERS => {
            assert!(m.contains("is repeated"), "{m}");
        }
        (Err(EntraError::TooManyParameters { limit }), _) => {
            assert_eq!(*limit, MAX_PARAMETERS);
            assert!(reference.len() > MAX_PARAMETERS);
            assert!(first_repeat.is_none_or(|i| i >= MAX_PARAMETERS));
        }
        (Ok(params), None) => {
            assert_eq!(params.pairs(), reference.as_slice());
            assert!(params.pairs().len() <= MAX_PARAMETERS);
        }
        (other, repeat) => panic!(
            "{other:?} for {} parameters (first repeat at {repeat:?})",
            reference.len()
        ),
    }
    let Ok(params) = result else { return };

    // `get` treats an empty value as absent, everything else is returned as decoded.
    for (k, v) in params.pairs() {
        let want = (!v.is_empty()).then_some(v.as_str());
        assert_eq!(params.get(k), want, "get({k:?})");
    }

    // The sign-in and consent forms carry the authorize request as `encode()`; it must come back
    // unchanged, unless re-encoding made it larger than any form may be (then it is refused).
    let encoded = params.encode();
    match Params::parse(encoded.as_bytes()) {
        Ok(again) => assert_eq!(again.pairs(), params.pairs(), "round trip of {encoded:?}"),
        Err(EntraError::RequestTooLarge { .. }) => assert!(encoded.len() > MAX_FORM_BYTES),
        Err(e) => panic!("re-encoded parameters do not parse: {e:?} for {encoded:?}"),
    }
}
