//! From text to a JSON tree and from a tree to typed values, keeping JSON paths for every error
//! and every ignored field.
//!
//! Leniency, each reported as a warning: a UTF-8 byte-order mark (Windows editors, .NET writers),
//! `//` and `/* */` comments and trailing commas (the file-format docs' own example has both, and
//! the service's .NET reader accepts them). `null` members are treated as absent: ARM and SDK
//! dumps write `null` for every unset field.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ConfigError, ConfigWarning, WarningKind};

/// Parses `text` into a JSON tree. Syntax errors name line and column.
pub(super) fn read_document(
    source: &str,
    text: &str,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Value, ConfigError> {
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            warnings.push(ConfigWarning::new(
                WarningKind::LenientJson,
                "$",
                "a UTF-8 byte-order mark precedes the JSON; ignored",
            ));
            rest
        }
        None => text,
    };
    let strict_error = match serde_json::from_str::<Value>(text) {
        Ok(v) => return Ok(without_nulls(v)),
        Err(e) => e,
    };
    let relaxed = relax(text);
    if relaxed != text {
        // Positions are preserved by `relax`, so this error points into the original text.
        return match serde_json::from_str::<Value>(&relaxed) {
            Ok(v) => {
                warnings.push(ConfigWarning::new(
                    WarningKind::LenientJson,
                    "$",
                    "comments or trailing commas accepted; strict JSON tools (az webapp auth set) reject them",
                ));
                Ok(without_nulls(v))
            }
            Err(e) => Err(syntax(source, &e)),
        };
    }
    Err(syntax(source, &strict_error))
}

fn syntax(source: &str, e: &serde_json::Error) -> ConfigError {
    ConfigError::new(source, "$", format!("invalid JSON: {e}"))
}

/// Removes object members whose value is `null`, at every depth.
fn without_nulls(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|_, m| !m.is_null());
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// Blanks out comments and trailing commas with spaces (newlines kept) so that line and column
/// numbers stay those of the original text.
fn relax(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match (b, bytes.get(i + 1)) {
            (b'"', _) => in_string = true,
            (b'/', Some(b'/')) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    bytes[i] = b' ';
                    i += 1;
                }
                continue;
            }
            (b'/', Some(b'*')) => {
                let mut closed = false;
                while i < bytes.len() {
                    if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        bytes[i] = b' ';
                        bytes[i + 1] = b' ';
                        i += 2;
                        closed = true;
                        break;
                    }
                    if bytes[i] != b'\n' {
                        bytes[i] = b' ';
                    }
                    i += 1;
                }
                if !closed {
                    // Leave the unterminated comment to the parser's error; nothing to restore.
                    break;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    // Second pass, comments gone: a comma followed only by whitespace and a closing bracket.
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b',' {
            let next = bytes[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
            if matches!(next, Some(b'}' | b']')) {
                bytes[i] = b' ';
            }
        }
        i += 1;
    }
    // Only ASCII bytes were replaced by ASCII spaces, and whole multi-byte characters inside
    // comments were replaced byte by byte, so the text is still UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|_| text.to_string())
}

/// Deserializes `value` (found at JSON path `root`) into `T`. Type errors carry the full path;
/// unknown fields become warnings with theirs.
pub(super) fn deserialize_at<T: DeserializeOwned>(
    source: &str,
    value: &Value,
    root: &str,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<T, ConfigError> {
    let mut ignored = Vec::new();
    let mut record = |p: serde_ignored::Path<'_>| ignored.push(render_ignored(&p));
    let tracked = serde_ignored::Deserializer::new(value, &mut record);
    let parsed = serde_path_to_error::deserialize(tracked).map_err(|e| {
        let rel = e.path().to_string();
        let path = if rel == "." {
            root.to_string()
        } else {
            format!("{root}.{rel}")
        };
        ConfigError::new(source, path, e.into_inner().to_string())
    })?;
    for rel in ignored {
        let last = rel
            .rsplit(['.', '['])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let message = if last.contains("secret") && !last.contains("settingname") {
            "unknown field, ignored (v2 never holds secrets inline: put the value in an app \
             setting and name it in clientSecretSettingName)"
        } else {
            "unknown field, ignored"
        };
        warnings.push(ConfigWarning::new(
            WarningKind::UnknownField,
            format!("{root}.{rel}"),
            message,
        ));
    }
    Ok(parsed)
}

/// `a.b[0].c` — serde_ignored's own `Display` writes indices as `a.b.0.c` and options as `?`.
fn render_ignored(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", render_ignored(parent)),
        Path::Map { parent, key } => {
            let p = render_ignored(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => render_ignored(parent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relax_keeps_positions_and_strings() {
        let text = "{\n  // c\n  \"a\": \"//x,]\", /* b */\n  \"b\": [1,2,],\n}";
        let r = relax(text);
        assert_eq!(r.len(), text.len());
        assert_eq!(r.lines().count(), text.lines().count());
        let v: Value = serde_json::from_str(&r).expect("relaxed text parses");
        assert_eq!(v["a"], "//x,]");
        assert_eq!(v["b"], serde_json::json!([1, 2]));
    }

    #[test]
    fn nulls_are_absent_and_errors_have_positions() {
        let mut w = Vec::new();
        let v = read_document("f", "\u{feff}{\"a\": null, \"b\": {\"c\": null}}", &mut w)
            .expect("parses");
        assert_eq!(v, serde_json::json!({"b": {}}));
        assert_eq!(w.len(), 1);
        let err = read_document("f.json", "{\n  \"a\": 1\n  \"b\": 2\n}", &mut w).expect_err("bad");
        assert_eq!(err.path, "$");
        assert!(err.message.contains("line 3 column 3"), "{}", err.message);
    }
}
