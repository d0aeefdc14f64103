//! `odata_filter`: the `$filter` parser of the identity provider's Microsoft Graph
//! (`easyauth_entra::endpoints::graph::odata::parse`).

use easyauth_entra::endpoints::graph::odata::{Filter, parse};

/// Checks that a parsed filter names a plain property, prints back to text that parses to the
/// same filter, and matches its own value.
pub fn odata_filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Some(filter) = parse(&text) else { return };
    let property = filter.property();
    assert!(
        !property.is_empty()
            && property
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "property {property:?} from {text:?}"
    );
    let printed = filter.to_string();
    assert_eq!(
        parse(&printed).as_ref(),
        Some(&filter),
        "round trip of {printed:?}"
    );
    let value = match &filter {
        Filter::Eq { value, .. }
        | Filter::StartsWith { value, .. }
        | Filter::AnyEq { value, .. } => value,
    };
    assert!(
        filter.matches_text(value),
        "{filter:?} does not match its own value"
    );
}
