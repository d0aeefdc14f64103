//! OpenID Connect discovery (v2 and v1), JWKS, and the instance-discovery document MSAL asks for.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{TenantAlias, tenant};
use crate::Idp;
use crate::error::JsonError;
use crate::log::LogFields;

fn cached_json(body: Value, tenant: Option<String>) -> Response {
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400, private"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, OPTIONS"),
    );
    response.extensions_mut().insert(LogFields {
        tenant,
        ..Default::default()
    });
    response
}

/// The path segment endpoints use: the tenant id for tenant-specific documents.
fn segment(alias: TenantAlias, requested: &str, tid: &str) -> String {
    match alias {
        TenantAlias::Specific => tid.to_owned(),
        TenantAlias::Multi => requested.to_ascii_lowercase(),
    }
}

pub(crate) async fn openid_configuration_v2(
    State(idp): State<Arc<Idp>>,
    Path(name): Path<String>,
) -> Result<Response, JsonError> {
    let (dir, alias) = tenant(&idp, &name)?;
    let base = &idp.config.public_url;
    let t = segment(alias, &name, &dir.tenant.id);
    let issuer = match alias {
        TenantAlias::Specific => idp.issuer_v2.clone(),
        TenantAlias::Multi => format!("{base}/{{tenantid}}/v2.0"),
    };
    let body = json!({
        "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/authorize"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{t}/oauth2/v2.0/logout"),
        "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "tenant_region_scope": null,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": host_of(base),
        "rbac_url": "https://pas.windows.net",
        "code_challenge_methods_supported": ["plain", "S256"],
    });
    Ok(cached_json(body, Some(dir.tenant.id.clone())))
}

pub(crate) async fn openid_configuration_v1(
    State(idp): State<Arc<Idp>>,
    Path(name): Path<String>,
) -> Result<Response, JsonError> {
    let (dir, alias) = tenant(&idp, &name)?;
    let base = &idp.config.public_url;
    let t = segment(alias, &name, &dir.tenant.id);
    let issuer = match alias {
        TenantAlias::Specific => idp.issuer_v1.clone(),
        TenantAlias::Multi => format!("{base}/{{tenantid}}/"),
    };
    let body = json!({
        "token_endpoint": format!("{base}/{t}/oauth2/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{t}/discovery/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": issuer,
        "microsoft_multi_refresh_token": true,
        "authorization_endpoint": format!("{base}/{t}/oauth2/authorize"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{t}/oauth2/logout"),
        "device_authorization_endpoint": format!("{base}/{t}/oauth2/devicecode"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"],
        "tenant_region_scope": null,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": host_of(base),
        "rbac_url": "https://pas.windows.net",
    });
    Ok(cached_json(body, Some(dir.tenant.id.clone())))
}

pub(crate) async fn keys_v2(
    State(idp): State<Arc<Idp>>,
    Path(name): Path<String>,
) -> Result<Response, JsonError> {
    let (dir, alias) = tenant(&idp, &name)?;
    let issuer = match alias {
        TenantAlias::Specific => idp.issuer_v2.clone(),
        TenantAlias::Multi => format!("{}/{{tenantid}}/v2.0", idp.config.public_url),
    };
    Ok(cached_json(
        idp.keys().jwks(Some(&issuer)),
        Some(dir.tenant.id.clone()),
    ))
}

pub(crate) async fn keys_v1(
    State(idp): State<Arc<Idp>>,
    Path(name): Path<String>,
) -> Result<Response, JsonError> {
    let (dir, _) = tenant(&idp, &name)?;
    Ok(cached_json(
        idp.keys().jwks(None),
        Some(dir.tenant.id.clone()),
    ))
}

/// MSAL's instance discovery, answered for this host only: the aliases list names this host, so
/// a client that does not switch instance discovery off still stays here.
pub(crate) async fn instance(
    State(idp): State<Arc<Idp>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, JsonError> {
    let params = super::form::Params::from_query(query.as_deref())?;
    let host = host_of(&idp.config.public_url);
    let endpoint = params.get("authorization_endpoint").unwrap_or_default();
    let endpoint_host = url::Url::parse(endpoint).ok().and_then(|u| {
        u.host_str().map(|h| match u.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_owned(),
        })
    });
    if endpoint_host.as_deref() != Some(host.as_str()) {
        return Err(crate::EntraError::InvalidRequest {
            code: 50049,
            message: "Unknown or invalid instance.".into(),
        }
        .into());
    }
    let tenant = url::Url::parse(endpoint)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next().map(str::to_owned))
        })
        .unwrap_or_else(|| "common".into());
    let body = json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", idp.config.public_url),
        "api-version": params.get("api-version").unwrap_or("1.1"),
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    });
    Ok(cached_json(body, None))
}

fn host_of(base: &str) -> String {
    url::Url::parse(base)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        })
        .unwrap_or_default()
}
