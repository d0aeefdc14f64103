//! Property checks for every parser that reads attacker input, one function per fuzz target.
//!
//! Each function takes arbitrary bytes, feeds them to the parser and panics when a property the
//! parser promises does not hold (a panic inside the parser fails the same way). The libFuzzer
//! targets in `fuzz/fuzz_targets/` are one-line wrappers around these functions, and
//! `tests/replay.rs` runs them over the checked-in corpora, so `cargo nextest` re-checks every
//! input the fuzzers ever found interesting without needing libFuzzer or nightly flags.

mod config;
mod cookie;
mod form;
mod jws;
mod odata;
mod paths;
mod redirect;
mod runtime;
mod site;

pub use config::authsettings;
pub use cookie::sealed_cookie;
pub use form::form_params;
pub use jws::jws;
pub use odata::odata_filter;
pub use paths::paths;
pub use redirect::redirect;
pub use site::site_toml;

/// A fuzz target: its name (the folder under `fuzz/corpus/`) and its property check.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by the name `cargo xtask fuzz --target` and the corpus folders use.
pub const TARGETS: &[Target] = &[
    ("form_params", form_params),
    ("jws", jws),
    ("sealed_cookie", sealed_cookie),
    ("authsettings", authsettings),
    ("paths", paths),
    ("redirect", redirect),
    ("site_toml", site_toml),
    ("odata_filter", odata_filter),
];
