//! The OData query options the Azure CLI sends: `$filter` in three forms, `$select`, `$top`.
//! Anything else in `$filter` is refused as an unsupported query rather than guessed at.

use serde_json::{Map, Value};

use super::error::GraphError;
use crate::endpoints::form::Params;

/// Graph's largest page.
const MAX_TOP: usize = 999;

/// One `$filter` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `prop eq 'value'`
    Eq { property: String, value: String },
    /// `startswith(prop,'value')`
    StartsWith { property: String, value: String },
    /// `prop/any(c:c eq 'value')`
    AnyEq { property: String, value: String },
}

impl Filter {
    /// The filtered property and the condition's kind, for "which filters does this resource
    /// support" checks.
    pub fn property(&self) -> &str {
        match self {
            Filter::Eq { property, .. }
            | Filter::StartsWith { property, .. }
            | Filter::AnyEq { property, .. } => property,
        }
    }

    /// Whether `text` (the object's value of the filtered property) satisfies the condition.
    /// OData string comparison in Graph's directory is case-insensitive.
    pub fn matches_text(&self, text: &str) -> bool {
        match self {
            Filter::Eq { value, .. } | Filter::AnyEq { value, .. } => {
                text.eq_ignore_ascii_case(value)
            }
            Filter::StartsWith { value, .. } => text
                .to_lowercase()
                .starts_with(value.to_lowercase().as_str()),
        }
    }

    fn unsupported(&self) -> GraphError {
        let what = match self {
            Filter::Eq { property, .. } => format!("'{property} eq' is not supported"),
            Filter::StartsWith { property, .. } => {
                format!("'startswith({property},...)' is not supported")
            }
            Filter::AnyEq { property, .. } => {
                format!("'{property}/any(...)' is not supported")
            }
        };
        GraphError::UnsupportedQuery(format!("{what} for this resource."))
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pub(crate) filter: Option<Filter>,
    pub(crate) select: Option<Vec<String>>,
    pub(crate) top: Option<usize>,
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Result<Query, GraphError> {
        let params = Params::from_query(raw).map_err(|e| GraphError::BadRequest(e.to_string()))?;
        let mut query = Query::default();
        for (name, value) in params.pairs() {
            match name.as_str() {
                "$filter" => query.filter = Some(parse_filter(value)?),
                "$select" => {
                    let fields: Vec<String> = value
                        .split(',')
                        .map(|f| f.trim().to_owned())
                        .filter(|f| !f.is_empty())
                        .collect();
                    if fields.is_empty() {
                        return Err(GraphError::BadRequest("$select names no property.".into()));
                    }
                    query.select = Some(fields);
                }
                "$top" => {
                    let top = value
                        .trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_TOP).contains(n))
                        .ok_or_else(|| {
                            GraphError::BadRequest(format!(
                                "Invalid page size specified: '{}'. Must be between 1 and {MAX_TOP} inclusive.",
                                crate::util::clip(value, 32)
                            ))
                        })?;
                    query.top = Some(top);
                }
                other if other.starts_with('$') => {
                    return Err(GraphError::UnsupportedQuery(format!(
                        "the query option '{}' is not supported.",
                        crate::util::clip(other, 32)
                    )));
                }
                // Other parameters (api-version and the like) do not change a Graph answer.
                _ => {}
            }
        }
        Ok(query)
    }

    /// The filter, if it filters one of `supported` properties (case-insensitive).
    pub(crate) fn filter_on(&self, supported: &[&str]) -> Result<Option<&Filter>, GraphError> {
        match &self.filter {
            None => Ok(None),
            Some(f)
                if supported
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(f.property())) =>
            {
                Ok(Some(f))
            }
            Some(f) => Err(f.unsupported()),
        }
    }

    /// `$select` applied to one object (`id` stays, as Graph keeps the key).
    pub(crate) fn project(&self, mut object: Map<String, Value>) -> Value {
        if let Some(fields) = &self.select {
            object.retain(|k, _| k == "id" || fields.iter().any(|f| f.eq_ignore_ascii_case(k)));
        }
        Value::Object(object)
    }

    /// `$top` and `$select` applied to a list.
    pub(crate) fn page(&self, items: Vec<Map<String, Value>>) -> Vec<Value> {
        items
            .into_iter()
            .take(self.top.unwrap_or(MAX_TOP))
            .map(|o| self.project(o))
            .collect()
    }
}

/// Parses one `$filter` condition; `None` for anything outside the three supported forms.
pub fn parse(text: &str) -> Option<Filter> {
    parse_filter(text).ok()
}

impl std::fmt::Display for Filter {
    /// The condition in the form the Azure CLI writes it (a quote doubled inside a literal).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quote = |v: &str| v.replace('\'', "''");
        match self {
            Filter::Eq { property, value } => write!(f, "{property} eq '{}'", quote(value)),
            Filter::StartsWith { property, value } => {
                write!(f, "startswith({property},'{}')", quote(value))
            }
            Filter::AnyEq { property, value } => {
                write!(f, "{property}/any(c:c eq '{}')", quote(value))
            }
        }
    }
}

fn parse_filter(text: &str) -> Result<Filter, GraphError> {
    let unsupported = || {
        GraphError::UnsupportedQuery(format!(
            "the filter '{}' is not supported; supported forms are startswith(property,'value'), property eq 'value' and property/any(c:c eq 'value').",
            crate::util::clip(text, 200)
        ))
    };
    let t = text.trim();
    if let Some(inner) = strip_prefix_ci(t, "startswith(").and_then(|r| r.strip_suffix(')')) {
        let (property, rest) = inner.split_once(',').ok_or_else(unsupported)?;
        let value = literal(rest.trim()).ok_or_else(unsupported)?;
        return Ok(Filter::StartsWith {
            property: identifier(property).ok_or_else(unsupported)?,
            value,
        });
    }
    if let Some((property, rest)) = t.split_once("/any(")
        && let Some(lambda) = rest.strip_suffix(')')
    {
        let (var, condition) = lambda.split_once(':').ok_or_else(unsupported)?;
        let var = var.trim();
        let (lhs, value) = condition.split_once(" eq ").ok_or_else(unsupported)?;
        if var.is_empty() || lhs.trim() != var {
            return Err(unsupported());
        }
        return Ok(Filter::AnyEq {
            property: identifier(property).ok_or_else(unsupported)?,
            value: literal(value.trim()).ok_or_else(unsupported)?,
        });
    }
    if let Some((property, value)) = t.split_once(" eq ") {
        return Ok(Filter::Eq {
            property: identifier(property).ok_or_else(unsupported)?,
            value: literal(value.trim()).ok_or_else(unsupported)?,
        });
    }
    Err(unsupported())
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn identifier(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then(|| t.into())
}

/// An OData string literal: `'...'` with `''` for a quote.
fn literal(text: &str) -> Option<String> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            // Inside the literal a quote only appears doubled.
            if chars.next() != Some('\'') {
                return None;
            }
        }
        out.push(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_azure_cli_filters_parse() {
        assert_eq!(
            parse_filter("startswith(displayName,'my app')").ok(),
            Some(Filter::StartsWith {
                property: "displayName".into(),
                value: "my app".into()
            })
        );
        assert_eq!(
            parse_filter("appId eq 'a''b'").ok(),
            Some(Filter::Eq {
                property: "appId".into(),
                value: "a'b".into()
            })
        );
        assert_eq!(
            parse_filter("servicePrincipalNames/any(c:c eq 'api://x')").ok(),
            Some(Filter::AnyEq {
                property: "servicePrincipalNames".into(),
                value: "api://x".into()
            })
        );
        for bad in [
            "appId ne 'x'",
            "appId eq x",
            "appId eq 'x' or appId eq 'y'",
            "startswith(displayName,'x'",
            "a/any(c:d eq 'x')",
            "eq 'x'",
            "",
            "appId eq 'x'y'",
        ] {
            assert!(
                matches!(parse_filter(bad), Err(GraphError::UnsupportedQuery(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn top_is_bounded() {
        assert!(Query::parse(Some("$top=0")).is_err());
        assert!(Query::parse(Some("$top=1000")).is_err());
        assert!(Query::parse(Some("$top=x")).is_err());
        assert_eq!(
            Query::parse(Some("$top=5")).ok().and_then(|q| q.top),
            Some(5)
        );
        assert!(matches!(
            Query::parse(Some("$orderby=displayName")),
            Err(GraphError::UnsupportedQuery(_))
        ));
    }
}
