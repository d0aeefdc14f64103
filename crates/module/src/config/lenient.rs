//! Scalars the service writes in more than one JSON type: the file-format docs quote
//! `tokenRefreshExtensionHours` as a string, ARM returns `clearInboundClaimsMapping` as `"false"`,
//! and v1 `isAuthFromFile` is a string.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// The most hours a setting may hold: .NET's `TimeSpan.MaxValue`, as for timespans (a larger
/// value made turning the setting into a `Duration` panic).
pub(super) const MAX_HOURS: f64 = super::timespan::MAX_TIMESPAN_SECS as f64 / 3600.0;

/// A non-negative number of hours, as a JSON number or a numeric string (`72`, `72.0`, `"1.5"`),
/// at most [`MAX_HOURS`].
pub(super) fn hours<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative number of hours such as 72 or 1.5")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            if v.is_finite() && (0.0..=MAX_HOURS).contains(&v) {
                Ok(v)
            } else {
                Err(E::custom(format!(
                    "expected a non-negative number of hours such as 72 or 1.5 (at most {}), found {v}",
                    MAX_HOURS.floor()
                )))
            }
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            // Hours beyond 2^53 are refused anyway; precision loss is irrelevant.
            #[allow(clippy::cast_precision_loss)]
            self.visit_f64(v as f64)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            #[allow(clippy::cast_precision_loss)]
            self.visit_f64(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            match v.trim().parse::<f64>() {
                Ok(n) => self.visit_f64(n),
                Err(_) => Err(E::custom(format!(
                    "expected a non-negative number of hours such as 72 or 1.5, found {v:?}"
                ))),
            }
        }
    }
    d.deserialize_any(V)
}

/// A boolean written as `true`/`false` or as the strings `"true"`/`"false"` (any case).
pub(super) fn bool_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true or false (a boolean or the string \"true\"/\"false\")")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            if v.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if v.eq_ignore_ascii_case("false") {
                Ok(false)
            } else {
                Err(E::custom(format!(
                    "expected true or false (a boolean or the string \"true\"/\"false\"), found {v:?}"
                )))
            }
        }
    }
    d.deserialize_any(V)
}

pub(super) fn opt_bool_or_string<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<bool>, D::Error> {
    bool_or_string(d).map(Some)
}
