//! Resource ids and request paths. ARM matches its fixed path words case-insensitively
//! (`resourcegroups` and `resourceGroups` are the same, and the Azure CLI sends both), so requests
//! are routed by matching segments here rather than by a case-sensitive router.

use crate::error::{ArmError, ArmResult};

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/metadata/endpoints`
    Metadata,
    /// `/tenants`
    Tenants,
    /// `/subscriptions`
    Subscriptions,
    /// `/subscriptions/{s}`
    Subscription(String),
    /// `/subscriptions/{s}/locations`
    Locations(String),
    /// `/subscriptions/{s}/providers` or `/subscriptions/{s}/providers/{namespace}`
    Providers(String, Option<String>),
    /// `/providers/Microsoft.Web/webAppStacks` (and `/subscriptions/{s}/providers/Microsoft.Web/webAppStacks`)
    WebAppStacks,
    /// `/subscriptions/{s}/providers/Microsoft.Web/checknameavailability`
    CheckName(String),
    /// `/subscriptions/{s}/providers/Microsoft.Web/geoRegions`
    GeoRegions(String),
    /// `/subscriptions/{s}/providers/Microsoft.Web/{sites|serverfarms}`
    SubscriptionList(String, Kind),
    /// `/subscriptions/{s}/resourcegroups`
    Groups(String),
    /// `/subscriptions/{s}/resourcegroups/{rg}`
    Group(Scope),
    /// `/subscriptions/{s}/resourcegroups/{rg}/providers/Microsoft.Web/{sites|serverfarms}`
    GroupList(Scope, Kind),
    /// `.../serverfarms/{name}`
    Plan(Scope, String),
    /// `.../sites/{name}`
    Site(Scope, String),
    /// `.../sites/{name}/{rest...}`: configuration, actions, deployment status
    SiteChild(Scope, String, Vec<String>),
    /// `/azmirror/{rest...}`: the extension index and wheels
    Mirror(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sites,
    ServerFarms,
}

/// A subscription and resource group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub subscription: String,
    pub group: String,
}

fn is(segment: &str, word: &str) -> bool {
    segment.eq_ignore_ascii_case(word)
}

/// Decodes one percent-encoded path segment (ARM names never need it, but clients may encode).
fn decode(segment: &str) -> ArmResult<String> {
    percent_decode(segment)
        .ok_or_else(|| ArmError::bad_request(format!("the path segment {segment:?} is not valid")))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Routes a request path to what it names.
pub fn parse(path: &str) -> ArmResult<Target> {
    // Bounded: no ARM path of ours has more than 12 segments.
    let raw: Vec<&str> = path.trim_matches('/').split('/').take(16).collect();
    let segs: Vec<String> = raw.iter().map(|s| decode(s)).collect::<ArmResult<_>>()?;
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let unknown = || ArmError::unknown_type(path);
    let kind = |word: &str| {
        if is(word, "sites") {
            Some(Kind::Sites)
        } else if is(word, "serverfarms") {
            Some(Kind::ServerFarms)
        } else {
            None
        }
    };
    Ok(match s.as_slice() {
        [m, e] if is(m, "metadata") && is(e, "endpoints") => Target::Metadata,
        [t] if is(t, "tenants") => Target::Tenants,
        [p, ns, w] if is(p, "providers") && is(ns, "Microsoft.Web") && is(w, "webAppStacks") => {
            Target::WebAppStacks
        }
        [a, rest @ ..] if is(a, "azmirror") => {
            Target::Mirror(rest.iter().map(|x| (*x).to_owned()).collect())
        }
        [sub] if is(sub, "subscriptions") => Target::Subscriptions,
        [sub, id] if is(sub, "subscriptions") => Target::Subscription((*id).to_owned()),
        [sub, id, l] if is(sub, "subscriptions") && is(l, "locations") => {
            Target::Locations((*id).to_owned())
        }
        [sub, id, p] if is(sub, "subscriptions") && is(p, "providers") => {
            Target::Providers((*id).to_owned(), None)
        }
        [sub, id, p, ns] if is(sub, "subscriptions") && is(p, "providers") => {
            Target::Providers((*id).to_owned(), Some((*ns).to_owned()))
        }
        [sub, id, p, ns, w]
            if is(sub, "subscriptions") && is(p, "providers") && is(ns, "Microsoft.Web") =>
        {
            let id = (*id).to_owned();
            if is(w, "checknameavailability") {
                Target::CheckName(id)
            } else if is(w, "geoRegions") {
                Target::GeoRegions(id)
            } else if is(w, "webAppStacks") {
                Target::WebAppStacks
            } else if let Some(k) = kind(w) {
                Target::SubscriptionList(id, k)
            } else {
                return Err(unknown());
            }
        }
        [sub, id, g] if is(sub, "subscriptions") && is(g, "resourcegroups") => {
            Target::Groups((*id).to_owned())
        }
        [sub, id, g, rg, rest @ ..] if is(sub, "subscriptions") && is(g, "resourcegroups") => {
            let scope = Scope {
                subscription: (*id).to_owned(),
                group: (*rg).to_owned(),
            };
            match rest {
                [] => Target::Group(scope),
                [p, ns, w] if is(p, "providers") && is(ns, "Microsoft.Web") => {
                    Target::GroupList(scope, kind(w).ok_or_else(unknown)?)
                }
                [p, ns, w, name] if is(p, "providers") && is(ns, "Microsoft.Web") => {
                    match kind(w).ok_or_else(unknown)? {
                        Kind::Sites => Target::Site(scope, (*name).to_owned()),
                        Kind::ServerFarms => Target::Plan(scope, (*name).to_owned()),
                    }
                }
                [p, ns, w, name, child @ ..]
                    if is(p, "providers") && is(ns, "Microsoft.Web") && is(w, "sites") =>
                {
                    Target::SiteChild(
                        scope,
                        (*name).to_owned(),
                        child.iter().map(|c| c.to_ascii_lowercase()).collect(),
                    )
                }
                _ => return Err(unknown()),
            }
        }
        _ => return Err(unknown()),
    })
}

impl Scope {
    pub fn group_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription, self.group
        )
    }

    pub fn resource_id(&self, kind: Kind, name: &str) -> String {
        let word = match kind {
            Kind::Sites => "sites",
            Kind::ServerFarms => "serverfarms",
        };
        format!("{}/providers/Microsoft.Web/{word}/{name}", self.group_id())
    }
}

/// A site name as App Service accepts it: 2 to 60 letters, digits and hyphens, not starting or
/// ending with a hyphen (it becomes a host name label).
pub fn check_site_name(name: &str) -> Result<(), String> {
    let ok = (2..=60).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Site name '{name}' is invalid: site names only allow alphanumeric characters and hyphens, cannot start or end in a hyphen, and must be 2 to 60 characters long."
        ))
    }
}

/// A resource group name: 1 to 90 letters, digits, `_`, `-`, `.`, `(`, `)`, not ending in `.`.
pub fn check_group_name(name: &str) -> Result<(), String> {
    let ok = (1..=90).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')'))
        && !name.ends_with('.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Resource group name '{name}' is invalid: use 1 to 90 letters, digits, underscores, hyphens, periods or parentheses, not ending in a period."
        ))
    }
}

/// An App Service plan name: 1 to 60 letters, digits and hyphens.
pub fn check_plan_name(name: &str) -> Result<(), String> {
    let ok = (1..=60).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "App Service plan name '{name}' is invalid: use 1 to 60 letters, digits, hyphens or underscores."
        ))
    }
}

/// Parses `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Web/serverfarms/{p}`.
pub fn parse_plan_id(id: &str) -> Option<(Scope, String)> {
    match parse(id).ok()? {
        Target::Plan(scope, name) => Some((scope, name)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_case_insensitively() {
        let t = parse("/subscriptions/s1/resourcegroups/rg/providers/microsoft.web/SITES/app")
            .expect("site");
        assert_eq!(
            t,
            Target::Site(
                Scope {
                    subscription: "s1".into(),
                    group: "rg".into()
                },
                "app".into()
            )
        );
        let t = parse("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/app/config/authSettingsV2/list")
            .expect("child");
        assert!(
            matches!(t, Target::SiteChild(_, _, ref c) if c == &["config", "authsettingsv2", "list"])
        );
        assert_eq!(parse("/metadata/endpoints").expect("m"), Target::Metadata);
        assert!(matches!(
            parse("/subscriptions/s1/providers/Microsoft.Web/checknameavailability"),
            Ok(Target::CheckName(_))
        ));
        let err = parse("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/functions/x")
            .expect_err("unknown type");
        assert_eq!(err.code, "InvalidResourceType");
        assert!(parse("/subscriptions/s1/resourceGroups/rg/%zz").is_err());
    }

    #[test]
    fn names() {
        assert!(check_site_name("frontend-1").is_ok());
        for bad in ["a", "-a", "a-", "a.b", "a b", &"x".repeat(61)] {
            assert!(check_site_name(bad).is_err(), "{bad}");
        }
        assert!(check_group_name("myAuthResourceGroup").is_ok());
        assert!(check_group_name("rg.").is_err());
        assert!(check_plan_name("myPlan").is_ok());
        assert!(check_plan_name("my plan").is_err());
    }
}
