//! `authsettings`: `AuthSettings::parse`, which reads the ARM envelope, v2 `properties`, v1
//! `authsettings` and the file format (comments, trailing commas, a byte-order mark).

use easyauth_module::config::{AuthSettings, MAX_TIMESPAN_SECS, SourceFormat};
use serde_json::Value;

const SOURCE: &str = "fuzz.json";

pub fn authsettings(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let secrets = inline_secrets(text);
    let loaded = match AuthSettings::parse(SOURCE, text) {
        Ok(loaded) => loaded,
        Err(e) => {
            assert_eq!(e.source, SOURCE);
            assert!(e.path.starts_with('$'), "error path {:?}", e.path);
            let shown = e.to_string();
            for s in &secrets {
                assert!(
                    !shown.contains(s.as_str()),
                    "the error shows a secret: {shown}"
                );
            }
            return;
        }
    };
    for w in &loaded.warnings {
        assert!(w.path.starts_with('$'), "warning path {:?}", w.path);
        for s in &secrets {
            assert!(
                !w.message.contains(s.as_str()),
                "a warning shows a secret: {w}"
            );
            assert!(
                !w.path.contains(s.as_str()),
                "a warning shows a secret: {w}"
            );
        }
    }
    assert_eq!(
        loaded.resource.is_some(),
        matches!(loaded.format, SourceFormat::ArmV2 | SourceFormat::ArmV1)
    );

    // What `webapp auth show` prints and `WEBSITE_AUTH_V2_CONFIG_JSON` carries must load again,
    // as v2, to the same settings.
    let v2 = loaded.settings.to_v2_json();
    let printed = v2.to_string();
    for s in &secrets {
        assert!(!printed.contains(s.as_str()), "to_v2_json shows a secret");
    }
    let debug = format!("{:?}", loaded.settings);
    for s in &secrets {
        assert!(!debug.contains(s.as_str()), "Debug shows a secret");
    }
    let again = AuthSettings::parse("printed.json", &printed)
        .unwrap_or_else(|e| panic!("the printed settings do not load: {e}\n{printed}"));
    assert_eq!(again.format, SourceFormat::V2);
    let reprinted = again.settings.to_v2_json();
    assert!(
        same_json(&reprinted, &v2),
        "printing is not stable:\n{printed}\n{reprinted}"
    );

    // What building a module derives from the settings: spans the module adds to Unix times.
    let login = &loaded.settings.login;
    for (name, span) in [
        ("refresh extension", login.token_store.refresh_extension()),
        ("session", login.cookie_expiration.time_to_expiration),
        ("nonce", login.nonce.nonce_expiration_interval),
    ] {
        assert!(
            span.as_secs() <= MAX_TIMESPAN_SECS,
            "{name} lifetime {span:?} overflows the module's time arithmetic"
        );
    }
}

/// Equal, except that numbers may differ in the last bits: serde_json reads floats back to the
/// nearest value only approximately, so a printed float can come back one step off.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || ((x - y) / x.abs().max(y.abs())).abs() < 1e-12,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// The v1 inline secrets, where their values are distinctive enough (12+ characters with a
/// digit, a lower- and an upper-case letter, found once in the text) that seeing one in output
/// cannot be a coincidence such as a provider name or a default setting name.
fn inline_secrets(text: &str) -> Vec<String> {
    const FIELDS: &[&str] = &[
        "clientSecret",
        "googleClientSecret",
        "facebookAppSecret",
        "gitHubClientSecret",
        "twitterConsumerSecret",
        "microsoftAccountClientSecret",
    ];
    let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(text.trim_start_matches('\u{feff}'))
    else {
        return Vec::new();
    };
    let body = match doc.get("properties") {
        Some(Value::Object(properties)) => properties,
        _ => &doc,
    };
    FIELDS
        .iter()
        .filter_map(|f| body.get(*f)?.as_str())
        .filter(|s| {
            s.len() >= 12
                && s.bytes().any(|b| b.is_ascii_digit())
                && s.bytes().any(|b| b.is_ascii_lowercase())
                && s.bytes().any(|b| b.is_ascii_uppercase())
                && text.matches(*s).count() == 1
        })
        .map(str::to_owned)
        .collect()
}
