//! The runtimes the local platform offers (`GET /providers/Microsoft.Web/webAppStacks`), in the
//! shape the Azure CLI reads: Node 16, 18, 20 and 22 LTS and Python 3.11 and 3.12 on Linux, Node on
//! Windows. Every Node runs on this machine's `node` and every Python on its `python3`; the
//! deployment log says which version actually runs. Versions Azure has retired (16, 18) are still
//! listed, without an end-of-life date, because the tutorial's sample and people's notes name
//! them and the point here is to rehearse.

use serde_json::{Value, json};

struct NodeVersion {
    major: u32,
    /// Listed as retired on Azure (kept here so older instructions still run).
    retired_on_azure: bool,
}

const NODES: [NodeVersion; 4] = [
    NodeVersion {
        major: 22,
        retired_on_azure: false,
    },
    NodeVersion {
        major: 20,
        retired_on_azure: false,
    },
    NodeVersion {
        major: 18,
        retired_on_azure: true,
    },
    NodeVersion {
        major: 16,
        retired_on_azure: true,
    },
];

const PYTHONS: [&str; 2] = ["3.12", "3.11"];

/// A far-future end of life: the CLI hides runtimes whose date has passed.
const END_OF_LIFE: &str = "2099-12-31T00:00:00Z";

fn github(version: &str) -> Value {
    json!({"isSupported": true, "supportedVersion": version})
}

fn node(os: Option<&str>) -> Value {
    let minor = |n: &NodeVersion| {
        let display = format!(
            "Node {} LTS{}",
            n.major,
            if n.retired_on_azure {
                " (retired on Azure; runs on this machine's Node)"
            } else {
                ""
            }
        );
        let linux = json!({
            "runtimeVersion": format!("NODE|{}-lts", n.major),
            "isDeprecated": false,
            "isHidden": false,
            "remoteDebuggingSupported": false,
            "appInsightsSettings": {"isSupported": false},
            "gitHubActionSettings": github(&format!("{}.x", n.major)),
            "supportedFeatures": {},
            "endOfLifeDate": END_OF_LIFE,
        });
        let windows = json!({
            "runtimeVersion": format!("~{}", n.major),
            "isDeprecated": false,
            "isHidden": false,
            "remoteDebuggingSupported": false,
            "appInsightsSettings": {"isSupported": false},
            "gitHubActionSettings": github(&format!("{}.x", n.major)),
            "endOfLifeDate": END_OF_LIFE,
        });
        let mut settings = serde_json::Map::new();
        if os != Some("windows") {
            settings.insert("linuxRuntimeSettings".into(), linux);
        }
        if os != Some("linux") {
            settings.insert("windowsRuntimeSettings".into(), windows);
        }
        json!({
            "displayText": format!("{} LTS", n.major),
            "value": format!("{}-lts", n.major),
            "minorVersions": [{
                "displayText": display,
                "value": format!("{}-lts", n.major),
                "stackSettings": settings,
            }],
        })
    };
    json!({
        "id": null,
        "name": "node",
        "type": "Microsoft.Web/webAppStacks",
        "properties": {
            "displayText": "Node",
            "value": "node",
            "preferredOs": "linux",
            "majorVersions": NODES.iter().map(minor).collect::<Vec<_>>(),
        },
    })
}

fn python() -> Value {
    let major = |v: &&str| {
        json!({
            "displayText": format!("Python {v}"),
            "value": v,
            "minorVersions": [{
                "displayText": format!("Python {v}"),
                "value": v,
                "stackSettings": {"linuxRuntimeSettings": {
                    "runtimeVersion": format!("PYTHON|{v}"),
                    "isDeprecated": false,
                    "isHidden": false,
                    "remoteDebuggingSupported": false,
                    "appInsightsSettings": {"isSupported": false},
                    "gitHubActionSettings": github(v),
                    "supportedFeatures": {},
                    "endOfLifeDate": END_OF_LIFE,
                }},
            }],
        })
    };
    json!({
        "id": null,
        "name": "python",
        "type": "Microsoft.Web/webAppStacks",
        "properties": {
            "displayText": "Python",
            "value": "python",
            "preferredOs": "linux",
            "majorVersions": PYTHONS.iter().map(major).collect::<Vec<_>>(),
        },
    })
}

/// The stacks document; `os` is the request's `stackOsType` (`linux`, `windows`, or any).
pub fn web_app_stacks(os: Option<&str>) -> Value {
    let os = os.map(str::to_ascii_lowercase);
    let mut value = vec![node(os.as_deref())];
    if os.as_deref() != Some("windows") {
        value.push(python());
    }
    json!({"value": value, "nextLink": null})
}

/// Whether a runtime string is one the platform can run (`NODE|20-lts`, `PYTHON|3.11`, `~20`,
/// `NODE|20LTS`...), for early refusal of anything else.
pub fn is_known_runtime(runtime: &str) -> bool {
    let r = runtime.trim().to_ascii_lowercase();
    if r.is_empty() {
        return true;
    }
    let (lang, version) = r.split_once(['|', ':']).unwrap_or(("node", r.as_str()));
    match lang {
        "node" => version
            .trim_start_matches('~')
            .trim_end_matches("-lts")
            .trim_end_matches("lts")
            .parse::<u32>()
            .is_ok(),
        "python" => PYTHONS.contains(&version) || version.starts_with("3."),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_list_the_tutorials_runtimes() {
        let all = web_app_stacks(None).to_string();
        for v in [
            "NODE|20-lts",
            "NODE|22-lts",
            "NODE|16-lts",
            "PYTHON|3.11",
            "PYTHON|3.12",
            "~20",
        ] {
            assert!(all.contains(v), "{v}");
        }
        let windows = web_app_stacks(Some("Windows")).to_string();
        assert!(!windows.contains("PYTHON|") && !windows.contains("linuxRuntimeSettings"));
        assert!(is_known_runtime("NODE|20-lts") && is_known_runtime("node|20lts"));
        assert!(is_known_runtime("~20") && is_known_runtime("PYTHON|3.11"));
        assert!(!is_known_runtime("DOTNETCORE|8.0"));
    }
}
