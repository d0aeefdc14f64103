//! The cloud metadata document, tenants, the one subscription, locations, providers, the
//! runtime stacks, name availability, and the extension mirror.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Call, not_allowed, ok};
use crate::Arm;
use crate::error::{ArmError, ArmResult};
use crate::ids::check_site_name;

/// Regions a plan or app may name (`West Europe` and `westeurope` alike).
pub(crate) const LOCATIONS: [(&str, &str, &str); 12] = [
    ("westeurope", "West Europe", "Europe"),
    ("northeurope", "North Europe", "Europe"),
    ("uksouth", "UK South", "Europe"),
    ("francecentral", "France Central", "Europe"),
    ("germanywestcentral", "Germany West Central", "Europe"),
    ("swedencentral", "Sweden Central", "Europe"),
    ("eastus", "East US", "US"),
    ("eastus2", "East US 2", "US"),
    ("centralus", "Central US", "US"),
    ("westus2", "West US 2", "US"),
    ("japaneast", "Japan East", "Asia Pacific"),
    ("australiaeast", "Australia East", "Asia Pacific"),
];

/// The canonical display name of a location given in any spelling, or `None` when unknown.
pub(crate) fn location(name: &str) -> Option<&'static str> {
    let key: String = name
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    LOCATIONS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, display, _)| *display)
}

pub(crate) fn check_location(name: &str) -> ArmResult<&'static str> {
    location(name).ok_or_else(|| {
        ArmError::new(
            StatusCode::BAD_REQUEST,
            "LocationNotAvailableForResourceType",
            format!(
                "The provided location '{name}' is not available. List of available regions is '{}'.",
                LOCATIONS.iter().map(|(k, _, _)| *k).collect::<Vec<_>>().join(",")
            ),
        )
    })
}

pub(crate) fn metadata(arm: &Arm) -> ArmResult<Response> {
    let c = &arm.config;
    let login = format!("{}/", c.login_url.trim_end_matches('/'));
    let base = format!("{}/", c.base_url.trim_end_matches('/'));
    ok(json!({
        "name": "easyauth",
        "portal": c.portal_url.clone().unwrap_or_else(|| base.clone()),
        "resourceManager": base,
        "authentication": {
            "loginEndpoint": login,
            "audiences": crate::auth::AUDIENCES,
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "media": base,
        "graphAudience": login,
        "graph": login,
        "microsoftGraphResourceId": login,
        "gallery": base,
        "batch": base,
        "sqlManagement": base,
        "activeDirectoryDataLake": base,
        "appInsightsResourceId": base,
        "appInsightsTelemetryChannelResourceId": base,
        "attestationResourceId": base,
        "synapseAnalyticsResourceId": base,
        "logAnalyticsResourceId": base,
        "ossrDbmsResourceId": base,
        "azmirrorStorageAccountResourceId": format!("{}/azmirror", c.base_url.trim_end_matches('/')),
        "suffixes": {
            "azureDataLakeStoreFileSystem": "local",
            "acrLoginServer": "local",
            "sqlServerHostname": "local",
            "azureDataLakeAnalyticsCatalogAndJob": "local",
            "keyVaultDns": "local",
            "storage": "local",
            "azureFrontDoorEndpointSuffix": "local",
            "storageSyncEndpointSuffix": "local",
            "mhsmDns": "local",
            "mysqlServerEndpoint": "local",
            "postgresqlServerEndpoint": "local",
            "sqlServerEndpoint": "local",
            "synapseAnalytics": "local",
            "attestationEndpoint": "local",
        },
    }))
}

pub(crate) fn mirror(arm: &Arm, call: &Call, rest: &[String]) -> ArmResult<Response> {
    if call.method != Method::GET && call.method != Method::HEAD {
        return not_allowed(call, "/azmirror");
    }
    let path = rest.join("/");
    let Some((content_type, bytes)) = arm.mirror.files.get(&path) else {
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("/azmirror/{path} is not served (this mirror has the authV2 extension only)"),
        ));
    };
    let mut r = (StatusCode::OK, bytes.clone()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(r)
}

fn tenant_json(arm: &Arm) -> Value {
    let t = &arm.config.tenant_id;
    json!({
        "id": format!("/tenants/{t}"),
        "tenantId": t,
        "countryCode": "US",
        "displayName": "easyauth local tenant",
        "domains": [],
        "tenantCategory": "Home",
        "tenantType": "AAD",
        "defaultDomain": null,
    })
}

pub(crate) fn tenants(arm: &Arm, call: &Call) -> ArmResult<Response> {
    if call.method != Method::GET {
        return not_allowed(call, "/tenants");
    }
    ok(json!({"value": [tenant_json(arm)]}))
}

fn subscription_json(arm: &Arm) -> Value {
    let c = &arm.config;
    json!({
        "id": format!("/subscriptions/{}", c.subscription_id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": c.subscription_id,
        "tenantId": c.tenant_id,
        "displayName": c.subscription_name,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    })
}

/// The one subscription, if `id` names it (404 `SubscriptionNotFound` otherwise).
pub(crate) fn subscription_of(arm: &Arm, id: &str) -> ArmResult<()> {
    if id.eq_ignore_ascii_case(&arm.config.subscription_id) {
        Ok(())
    } else {
        Err(ArmError::subscription_not_found(id))
    }
}

pub(crate) fn subscriptions(arm: &Arm, call: &Call) -> ArmResult<Response> {
    if call.method != Method::GET {
        return not_allowed(call, "/subscriptions");
    }
    ok(json!({"value": [subscription_json(arm)], "count": {"type": "Total", "value": 1}}))
}

pub(crate) fn subscription(arm: &Arm, call: &Call, id: &str) -> ArmResult<Response> {
    subscription_of(arm, id)?;
    if call.method != Method::GET {
        return not_allowed(call, "/subscriptions/{id}");
    }
    ok(subscription_json(arm))
}

pub(crate) fn locations(arm: &Arm, call: &Call, id: &str) -> ArmResult<Response> {
    subscription_of(arm, id)?;
    if call.method != Method::GET {
        return not_allowed(call, "locations");
    }
    let value: Vec<Value> = LOCATIONS
        .iter()
        .map(|(name, display, geo)| {
            json!({
                "id": format!("/subscriptions/{id}/locations/{name}"),
                "name": name,
                "type": "Region",
                "displayName": display,
                "regionalDisplayName": format!("({geo}) {display}"),
                "metadata": {"regionType": "Physical", "regionCategory": "Recommended", "geographyGroup": geo},
            })
        })
        .collect();
    ok(json!({"value": value}))
}

pub(crate) fn geo_regions(arm: &Arm, call: &Call, id: &str) -> ArmResult<Response> {
    subscription_of(arm, id)?;
    if call.method != Method::GET {
        return not_allowed(call, "geoRegions");
    }
    let value: Vec<Value> = LOCATIONS
        .iter()
        .map(|(name, display, _)| {
            json!({
                "id": format!("/subscriptions/{id}/providers/Microsoft.Web/geoRegions/{display}"),
                "name": display,
                "type": "Microsoft.Web/geoRegions",
                "properties": {"name": display, "displayName": display, "orgDomain": "PUBLIC;FAKE", "key": name},
            })
        })
        .collect();
    ok(json!({"value": value}))
}

pub(crate) fn providers(
    arm: &Arm,
    call: &Call,
    id: &str,
    namespace: Option<&str>,
) -> ArmResult<Response> {
    subscription_of(arm, id)?;
    let web = json!({
        "id": format!("/subscriptions/{id}/providers/Microsoft.Web"),
        "namespace": "Microsoft.Web",
        "registrationState": "Registered",
        "registrationPolicy": "RegistrationRequired",
        "resourceTypes": [
            {"resourceType": "sites", "locations": LOCATIONS.iter().map(|l| l.1).collect::<Vec<_>>(), "apiVersions": ["2024-11-01", "2023-12-01", "2022-09-01"]},
            {"resourceType": "serverfarms", "locations": LOCATIONS.iter().map(|l| l.1).collect::<Vec<_>>(), "apiVersions": ["2024-11-01", "2023-12-01", "2022-09-01"]},
        ],
    });
    match namespace {
        None if call.method == Method::GET => ok(json!({"value": [web]})),
        Some(ns) if ns.eq_ignore_ascii_case("Microsoft.Web") => ok(web),
        Some(ns) => Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "InvalidResourceNamespace",
            format!(
                "The resource namespace '{ns}' is invalid (this local platform serves Microsoft.Web and Microsoft.Resources)."
            ),
        )),
        None => not_allowed(call, "providers"),
    }
}

pub(crate) fn stacks(call: &Call) -> ArmResult<Response> {
    if call.method != Method::GET {
        return not_allowed(call, "webAppStacks");
    }
    ok(crate::stacks::web_app_stacks(call.query("stackOsType")))
}

/// `checknameavailability`: a site name is taken when any web app of the subscription has it.
pub(crate) async fn check_name(arm: &Arm, call: &Call, id: &str) -> ArmResult<Response> {
    subscription_of(arm, id)?;
    if call.method != Method::POST {
        return not_allowed(call, "checknameavailability");
    }
    let body = call.body()?;
    let name = super::opt_str(body, "name", "$")?
        .ok_or_else(|| ArmError::invalid_body("$.name: a name is required"))?;
    if let Err(message) = check_site_name(name) {
        return ok(json!({"nameAvailable": false, "reason": "Invalid", "message": message}));
    }
    let taken = arm.state.site(name).await?.is_some();
    if taken {
        return ok(json!({
            "nameAvailable": false,
            "reason": "AlreadyExists",
            "message": format!("Hostname '{name}' already exists. Please select a different name."),
        }));
    }
    ok(json!({"nameAvailable": true, "reason": null, "message": null}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_in_any_spelling() {
        assert_eq!(location("West Europe"), Some("West Europe"));
        assert_eq!(location("westeurope"), Some("West Europe"));
        assert_eq!(location("WESTEUROPE"), Some("West Europe"));
        assert_eq!(location("Mars North"), None);
    }
}
