//! `site_toml`: the `easyauth up` site file (`Site::parse`) and `${...}` placeholder expansion.

use std::collections::HashSet;
use std::path::Path;

use easyauth_platform::site::{AppRun, Placeholders, Site};

const FILE: &str = "site.toml";

pub fn site_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = Path::new("/srv/site");
    let site = match Site::parse(FILE, text, base) {
        Ok(site) => site,
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with("site.toml: "), "{shown}");
            return;
        }
    };
    assert!(!site.apps.is_empty());
    let mut names = HashSet::new();
    let mut listeners = HashSet::new();
    let mut placeholders = Placeholders::default();
    for app in &site.apps {
        let n = &app.name;
        assert!(
            !n.is_empty()
                && n.len() <= 60
                && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !n.starts_with('-')
                && !n.ends_with('-'),
            "app name {n:?}"
        );
        assert!(names.insert(n.to_ascii_lowercase()), "{n:?} twice");
        if let (Some(addr), Some(port)) = (app.address, app.port)
            && port != 0
        {
            assert!(listeners.insert((addr, port)), "{addr}:{port} twice");
        }
        match &app.run {
            AppRun::Command(c) => assert!(c.cwd.is_some(), "a command without a folder"),
            AppRun::Upstream(u) => {
                assert_eq!(u.scheme(), "http");
                assert!(u.host_str().is_some());
            }
        }
        // Names the environment can carry: not empty, no `=`, no NUL.
        for key in app.app_settings.keys() {
            assert!(
                !key.is_empty() && !key.contains(['=', '\0']),
                "setting {key:?}"
            );
        }
        placeholders.insert(format!("apps.{n}.url"), format!("http://{n}.test:8080"));
    }
    for app in &site.apps {
        for value in app.app_settings.values() {
            check_expansion(&placeholders, value);
        }
    }
}

/// Text without `$` is left alone; a successful expansion leaves no `${` that was not written
/// as `$${` (the placeholder values here contain none).
fn check_expansion(placeholders: &Placeholders, value: &str) {
    let result = placeholders.expand(value);
    if !value.contains('$') {
        assert_eq!(result.as_deref(), Ok(value));
    }
    if let Ok(out) = result
        && !value.contains("$${")
    {
        assert!(!out.contains("${"), "{value:?} expanded to {out:?}");
    }
}
