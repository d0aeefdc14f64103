//! Whether to build: `SCM_DO_BUILD_DURING_DEPLOYMENT` from the app settings, else from the
//! zip's `.deployment` file (`[config]` section), as Kudu reads them: the app setting wins.

use std::collections::BTreeMap;

pub(crate) const BUILD_FLAG: &str = "SCM_DO_BUILD_DURING_DEPLOYMENT";

/// The decision and where it came from, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuildDecision {
    pub(crate) build: bool,
    pub(crate) source: String,
}

/// The `[config]` section of a `.deployment` file (an INI file). Keys are case-insensitive
/// (stored upper-case); `#` and `;` start comments.
pub(crate) fn parse_deployment_file(text: &str) -> BTreeMap<String, String> {
    let mut section = String::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_ascii_lowercase();
            continue;
        }
        if section != "config" {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_ascii_uppercase(), v.trim().to_owned());
        }
    }
    out
}

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1")
}

/// The app setting (any spelling of the name) wins over the `.deployment` file.
pub(crate) fn decide(
    app_settings: &BTreeMap<String, String>,
    deployment_file: Option<&BTreeMap<String, String>>,
) -> BuildDecision {
    if let Some((name, v)) = app_settings
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(BUILD_FLAG))
    {
        return BuildDecision {
            build: truthy(v),
            source: format!("app setting {name}={v}"),
        };
    }
    if let Some(v) = deployment_file.and_then(|f| f.get(BUILD_FLAG)) {
        return BuildDecision {
            build: truthy(v),
            source: format!(".deployment file {BUILD_FLAG}={v}"),
        };
    }
    BuildDecision {
        build: false,
        source: format!("{BUILD_FLAG} is not set"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_config_section_only() {
        let f = parse_deployment_file(
            "; comment\n[other]\nSCM_DO_BUILD_DURING_DEPLOYMENT=false\n[config]\n  scm_do_build_during_deployment = True \ncommand = deploy.sh\n",
        );
        assert_eq!(f.get(BUILD_FLAG).map(String::as_str), Some("True"));
        assert_eq!(f.get("COMMAND").map(String::as_str), Some("deploy.sh"));
    }

    #[test]
    fn app_setting_wins() {
        let file = parse_deployment_file("[config]\nSCM_DO_BUILD_DURING_DEPLOYMENT=true\n");
        let mut settings = BTreeMap::new();
        assert!(decide(&settings, Some(&file)).build);
        assert!(!decide(&settings, None).build);
        settings.insert(BUILD_FLAG.to_owned(), "false".to_owned());
        let d = decide(&settings, Some(&file));
        assert!(!d.build);
        assert!(d.source.contains("app setting"));
        settings.insert(BUILD_FLAG.to_owned(), "1".to_owned());
        assert!(decide(&settings, None).build);
    }
}
