//! `application/x-www-form-urlencoded` parameters with Entra's errors for missing and repeated
//! parameters (axum's `Form` rejection would answer in its own plain-text shape).
//!
//! Parsing is linear and bounded: a body or query larger than [`MAX_FORM_BYTES`] or with more
//! than [`MAX_PARAMETERS`] parameters is refused before any of it is decoded further, so one
//! request cannot keep a worker busy (repeats are found with a hash set, not by comparing every
//! name with every earlier one).

use std::collections::HashSet;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};

use crate::error::EntraError;
use crate::util::clip;

/// The largest form body or query string any endpoint reads. An authorize request, a token
/// request with a certificate assertion, or an on-behalf-of assertion carrying many group ids
/// are all well below it.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// The most parameters a form may carry; Entra's requests use about twenty.
pub const MAX_PARAMETERS: usize = 100;

#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(bytes: &[u8]) -> Result<Params, EntraError> {
        if bytes.len() > MAX_FORM_BYTES {
            return Err(EntraError::RequestTooLarge {
                limit: MAX_FORM_BYTES,
            });
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for (k, v) in form_urlencoded::parse(bytes) {
            if pairs.len() == MAX_PARAMETERS {
                return Err(EntraError::TooManyParameters {
                    limit: MAX_PARAMETERS,
                });
            }
            let k = k.into_owned();
            if !seen.insert(k.clone()) {
                return Err(EntraError::Malformed(format!(
                    "The parameter '{}' is repeated.",
                    clip(&k, 64)
                )));
            }
            pairs.push((k, v.into_owned()));
        }
        Ok(Params { pairs })
    }

    pub fn from_query(query: Option<&str>) -> Result<Params, EntraError> {
        Params::parse(query.unwrap_or("").as_bytes())
    }

    /// The value, treating an empty value as absent (as Entra does).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<&str, EntraError> {
        self.get(name).ok_or(EntraError::MissingParameter(name))
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Re-encodes the parameters (used to carry an authorize request through the sign-in form).
    pub fn encode(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

/// Reads a form body of at most [`MAX_FORM_BYTES`]. A declared `Content-Length` above the limit
/// is refused before anything is read; a body that grows past it (chunked) is refused as soon as
/// it does, without reading the rest.
pub async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, EntraError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_FORM_BYTES as u64) {
        return Err(EntraError::RequestTooLarge {
            limit: MAX_FORM_BYTES,
        });
    }
    axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| EntraError::RequestTooLarge {
            limit: MAX_FORM_BYTES,
        })
}

/// [`read_body`] then [`Params::parse`].
pub async fn read_form(headers: &HeaderMap, body: Body) -> Result<Params, EntraError> {
    Params::parse(&read_body(headers, body).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_many_parameters_and_large_bodies_are_refused() {
        assert!(matches!(
            Params::parse(b"a=1&b=2&a=3"),
            Err(EntraError::Malformed(m)) if m.contains("'a' is repeated")
        ));
        let many: String = (0..=MAX_PARAMETERS).map(|i| format!("p{i}=&")).collect();
        assert!(matches!(
            Params::parse(many.as_bytes()),
            Err(EntraError::TooManyParameters { .. })
        ));
        let exactly: String = (0..MAX_PARAMETERS).map(|i| format!("p{i}=&")).collect();
        assert_eq!(
            Params::parse(exactly.as_bytes())
                .expect("at the limit")
                .pairs()
                .len(),
            MAX_PARAMETERS
        );
        let big = vec![b'&'; MAX_FORM_BYTES + 1];
        assert!(matches!(
            Params::parse(&big),
            Err(EntraError::RequestTooLarge { .. })
        ));
        // Separators alone are no parameters at all.
        assert!(Params::parse(&big[..MAX_FORM_BYTES]).is_ok());
    }

    #[tokio::test]
    async fn a_declared_or_streamed_oversized_body_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_LENGTH,
            (MAX_FORM_BYTES + 1).to_string().parse().expect("value"),
        );
        assert!(matches!(
            read_body(&headers, Body::from("a=1")).await,
            Err(EntraError::RequestTooLarge { .. })
        ));
        let streamed = Body::from(vec![b'a'; MAX_FORM_BYTES + 10]);
        assert!(matches!(
            read_body(&HeaderMap::new(), streamed).await,
            Err(EntraError::RequestTooLarge { .. })
        ));
        let ok = read_form(&HeaderMap::new(), Body::from("grant_type=x&scope=y"))
            .await
            .expect("small form");
        assert_eq!(ok.get("scope"), Some("y"));
    }
}
