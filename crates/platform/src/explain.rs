//! The platform's own account of a refused call between two of its apps: which app called which,
//! why the module refused, and the exact commands that change it. The module's log says why in
//! general terms; only the platform knows which of its apps a client id belongs to.

use std::collections::HashMap;

use axum::http::{HeaderValue, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use easyauth_module::ReasonCode;
use serde_json::Value;

/// [`Callers`] as the origins read them; replaced whenever apps or their auth settings change.
pub type SharedCallers = std::sync::Arc<arc_swap::ArcSwap<Callers>>;

/// App registration client ids → app names, for the apps of this site.
#[derive(Debug, Clone, Default)]
pub struct Callers {
    by_client_id: HashMap<String, String>,
}

impl Callers {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Callers {
        Callers {
            by_client_id: pairs
                .into_iter()
                .map(|(id, app)| (id.to_ascii_lowercase(), app))
                .collect(),
        }
    }

    /// The site app that sent this bearer token, if any. The token is read without verifying
    /// it: this only names the caller in a log line, the module decides on its own.
    pub fn caller(&self, authorization: &HeaderValue) -> Option<(String, String)> {
        let value = authorization.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let payload = token.trim().split('.').nth(1)?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let client = claims
            .get("azp")
            .or_else(|| claims.get("appid"))?
            .as_str()?
            .to_ascii_lowercase();
        let app = self.by_client_id.get(&client)?.clone();
        Some((app, client))
    }
}

/// What to change, for the refusals an app-to-app call meets in the tutorial.
pub fn advice(
    status: StatusCode,
    code: Option<ReasonCode>,
    caller: &str,
    client: &str,
    app: &str,
) -> String {
    if status == StatusCode::FORBIDDEN && code == Some(ReasonCode::ApplicationNotAllowed) {
        format!(
            "add {client} (app {caller}) to {app}'s identityProviders.azureActiveDirectory.validation.defaultAuthorizationPolicy.allowedApplications: `easyauth webapp auth show --name {app} > {app}.json`, edit, `easyauth webapp auth set --name {app} --body @{app}.json`"
        )
    } else if status == StatusCode::UNAUTHORIZED && code == Some(ReasonCode::AudienceNotAllowed) {
        format!(
            "{caller} sent a token that is not for {app}: put {app}'s scope in {caller}'s identityProviders.azureActiveDirectory.login.loginParameters (`easyauth webapp auth show --name {caller}`), then sign out of {caller} and in again"
        )
    } else if status == StatusCode::UNAUTHORIZED {
        format!(
            "{app} did not accept {caller}'s token; sign out of {caller} and in again if it expired, and compare the token's aud/iss with {app}'s validation settings (`easyauth webapp auth show --name {app}`)"
        )
    } else {
        format!("see {app}'s authorization settings (`easyauth webapp auth show --name {app}`)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(claims: &Value) -> HeaderValue {
        let token = format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.sig",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header")
    }

    #[test]
    fn names_the_calling_app_from_azp_or_appid() {
        let callers = Callers::new([("ABC".to_owned(), "frontend".to_owned())]);
        let v2 = bearer(&serde_json::json!({"azp": "abc"}));
        assert_eq!(
            callers.caller(&v2),
            Some(("frontend".to_owned(), "abc".to_owned()))
        );
        let v1 = bearer(&serde_json::json!({"appid": "abc"}));
        assert_eq!(
            callers.caller(&v1).map(|c| c.0).as_deref(),
            Some("frontend")
        );
        assert_eq!(
            callers.caller(&bearer(&serde_json::json!({"azp": "xyz"}))),
            None
        );
        assert_eq!(callers.caller(&HeaderValue::from_static("Basic abc")), None);
        assert_eq!(
            callers.caller(&HeaderValue::from_static("Bearer not.a-jwt!")),
            None
        );
    }

    #[test]
    fn advice_names_the_setting_and_the_commands() {
        let forbidden = advice(
            StatusCode::FORBIDDEN,
            Some(ReasonCode::ApplicationNotAllowed),
            "frontend",
            "abc",
            "backend",
        );
        assert!(
            forbidden.contains("add abc (app frontend) to backend's"),
            "{forbidden}"
        );
        assert!(
            forbidden.contains("easyauth webapp auth set --name backend"),
            "{forbidden}"
        );
        let audience = advice(
            StatusCode::UNAUTHORIZED,
            Some(ReasonCode::AudienceNotAllowed),
            "frontend",
            "abc",
            "backend",
        );
        assert!(
            audience.contains(
                "in frontend's identityProviders.azureActiveDirectory.login.loginParameters"
            ),
            "{audience}"
        );
        // The advice follows the code, not words in the message.
        let expired = advice(
            StatusCode::UNAUTHORIZED,
            Some(ReasonCode::TokenRejected),
            "frontend",
            "abc",
            "backend",
        );
        assert!(
            expired.contains("did not accept frontend's token"),
            "{expired}"
        );
        let unknown = advice(StatusCode::FORBIDDEN, None, "frontend", "abc", "backend");
        assert!(
            unknown.starts_with("see backend's authorization settings"),
            "{unknown}"
        );
    }
}
