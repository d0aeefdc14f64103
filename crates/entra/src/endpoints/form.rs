//! `application/x-www-form-urlencoded` parameters with Entra's errors for missing and repeated
//! parameters (axum's `Form` rejection would answer in its own plain-text shape).

use crate::error::EntraError;
use crate::util::clip;

#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(bytes: &[u8]) -> Result<Params, EntraError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(bytes)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (i, (k, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(other, _)| other == k) {
                return Err(EntraError::Malformed(format!(
                    "The parameter '{}' is repeated.",
                    clip(k, 64)
                )));
            }
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
