//! What loading a configuration can report: one fatal [`ConfigError`] that names where the problem
//! is, or non-fatal [`ConfigWarning`]s (unknown fields, v1 mapping notes, inline secrets).

use std::fmt;

/// A configuration problem: which file, where in it (a JSON path such as
/// `$.properties.globalValidation.unauthenticatedClientAction`), and what was expected and found.
///
/// `Display` is `"{source}: at {path}: {message}"`. Messages never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name (or whatever name the caller gave the text).
    pub source: String,
    /// JSON path of the offending value; `$` for the document itself.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(
        source: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            source: source.into(),
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: at {}: {}", self.source, self.path, self.message)
    }
}

// Not derived with thiserror: a field named `source` would be taken for the error's cause.
impl std::error::Error for ConfigError {}

/// Why a warning was raised, so callers can filter (e.g. show unknown fields only with `-v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// A field the model does not know; it was ignored.
    UnknownField,
    /// The input was the v1 `authsettings` shape and was translated to v2.
    V1Mapped,
    /// A v1 inline secret was kept in memory; v2 expects it in an app setting.
    InlineSecret,
    /// The text was not strict JSON (comments, trailing commas, a byte-order mark) but was accepted.
    LenientJson,
    /// A setting that is valid but probably does not do what its author meant.
    Suspicious,
}

/// A non-fatal note about the configuration, with the JSON path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub kind: WarningKind,
    /// JSON path, in the same notation as [`ConfigError::path`].
    pub path: String,
    pub message: String,
}

impl ConfigWarning {
    pub(crate) fn new(
        kind: WarningKind,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigWarning {
        ConfigWarning {
            kind,
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: {}", self.path, self.message)
    }
}
