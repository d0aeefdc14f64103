//! Files under bench/ (server configurations, the report's prose in bench/templates/) with
//! `@NAME@` placeholders that xtask fills. A name is upper-case letters, digits and `_`; any
//! other `@` (an e-mail address) is left alone. Every placeholder must get a value and every
//! value must have a placeholder, so a renamed placeholder fails loudly instead of leaving
//! `@NAME@` in a config or in docs/benchmarks.md.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Reads `template` and fills it.
pub(crate) fn fill(template: &Path, pairs: &[(&str, String)]) -> Result<String> {
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("reading {}", template.display()))?;
    fill_text(&text, pairs).with_context(|| format!("filling {}", template.display()))
}

/// The report template `bench/templates/<name>.md`, filled.
pub(crate) fn report(root: &Path, name: &str, pairs: &[(&str, String)]) -> Result<String> {
    fill(
        &root.join("bench/templates").join(format!("{name}.md")),
        pairs,
    )
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Replaces every `@NAME@` of `text` with its value (values are not scanned again).
pub(crate) fn fill_text(text: &str, pairs: &[(&str, String)]) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut used = vec![false; pairs.len()];
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match after
            .find('@')
            .map(|end| &after[..end])
            .filter(|n| is_name(n))
        {
            Some(name) => {
                let Some(i) = pairs.iter().position(|(k, _)| *k == name) else {
                    bail!("placeholder @{name}@ has no value");
                };
                used[i] = true;
                out.push_str(&pairs[i].1);
                rest = &after[name.len() + 1..];
            }
            None => {
                out.push('@');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    if let Some(i) = used.iter().position(|u| !u) {
        bail!("no placeholder @{}@ for the value given", pairs[i].0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_placeholder_and_leaves_other_at_signs() -> Result<()> {
        let text = "mail a@b.c; listen @PORT@; root @DIR@; again @PORT@\n";
        let out = fill_text(text, &[("PORT", "1".into()), ("DIR", "/x@Y@".into())])?;
        assert_eq!(out, "mail a@b.c; listen 1; root /x@Y@; again 1\n");
        Ok(())
    }

    #[test]
    fn a_placeholder_without_value_or_a_value_without_placeholder_fails() {
        assert!(fill_text("a@b.c @PORT@", &[]).is_err());
        assert!(fill_text("@PORT@", &[("PORT", "1".into()), ("DIR", "/".into())]).is_err());
    }
}
