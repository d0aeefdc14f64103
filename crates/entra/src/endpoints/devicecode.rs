//! The device authorization endpoint (RFC 8628 as Entra serves it): a client that cannot show a
//! browser (the Azure CLI's `az login --use-device-code`) asks for a device code, tells the person
//! to open the verification page ([`page`]) and type the user code there, and polls the token
//! endpoint (`grants::device_code`) until they have signed in, declined, or the code expired.
//!
//! Both codes live in the store as ephemeral records under hashes (never the values): the
//! request under the SHA-256 of the device code, an index under a keyed hash of the user code
//! (user codes are short, so a plain hash could be reversed by trying them all).

pub(crate) mod page;

use std::sync::Arc;

use aws_lc_rs::hmac;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::form::read_form;
use super::tenant;
use super::token::correlation_id;
use crate::Idp;
use crate::error::{EntraError, JsonError};
use crate::log::LogFields;
use crate::scopes::Scopes;
use crate::util::{clip, hex, now, now_ms, random_token, random_user_code, sha256_hex};

/// The device request, keyed by the SHA-256 of the device code.
pub(crate) const DEVICE_KIND: &str = "device-code";
/// The user code index: keyed hash of the user code -> the device request's key.
const USER_CODE_KIND: &str = "device-user-code";
/// When the client last polled (milliseconds), for `slow_down`.
const POLL_KIND: &str = "device-code-poll";
/// How long an expired request is remembered, so a late poll (or a late visit to the page) hears
/// `expired_token` rather than `bad_verification_code`.
const EXPIRED_GRACE: i64 = 3600;

/// A device authorization request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeviceRecord {
    pub(crate) client_id: String,
    /// The scopes requested, as the client wrote them.
    pub(crate) scope: String,
    /// After this instant the code is refused with `expired_token` (the record itself is kept a
    /// while longer, so a late poll learns that rather than `bad_verification_code`).
    pub(crate) expires_at: i64,
    pub(crate) interval: i64,
    pub(crate) state: DeviceState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum DeviceState {
    /// Nobody has entered the user code and finished yet.
    Pending,
    /// The person signed in (and consented): the next poll gets the tokens, once.
    Approved { user_id: String, auth_time: i64 },
    /// The person chose Cancel on the page.
    Declined,
}

impl Idp {
    fn user_code_key(&self, user_code: &str) -> String {
        let tag = hmac::sign(
            &self.pairwise_key,
            format!("device-user-code\n{user_code}").as_bytes(),
        );
        hex(tag.as_ref())
    }

    /// The device request with this key (expired or not, redeemed or not).
    pub(crate) async fn device_request(
        &self,
        key: &str,
    ) -> Result<Option<DeviceRecord>, EntraError> {
        let Some(json) = self.store.get_ephemeral(DEVICE_KIND, key, now()).await? else {
            return Ok(None);
        };
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| EntraError::Internal(e.to_string()))
    }

    /// The device request a typed user code names, with its key.
    pub(crate) async fn device_request_by_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<(String, DeviceRecord)>, EntraError> {
        let index = self.user_code_key(user_code);
        let Some(key) = self
            .store
            .get_ephemeral(USER_CODE_KIND, &index, now())
            .await?
        else {
            return Ok(None);
        };
        Ok(self.device_request(&key).await?.map(|r| (key, r)))
    }

    /// Moves a pending, unexpired request to `state`; false if it is no longer pending (another
    /// tab answered first) or has expired.
    pub(crate) async fn settle_device_request(
        &self,
        key: &str,
        state: DeviceState,
    ) -> Result<bool, EntraError> {
        let _guard = self.device_lock.lock().await;
        let Some(mut record) = self.device_request(key).await? else {
            return Ok(false);
        };
        if record.state != DeviceState::Pending || record.expires_at <= now() {
            return Ok(false);
        }
        record.state = state;
        let json =
            serde_json::to_string(&record).map_err(|e| EntraError::Internal(e.to_string()))?;
        self.store
            .put_ephemeral(DEVICE_KIND, key, &json, self.device_record_expiry(&record))
            .await?;
        Ok(true)
    }

    /// Records a poll; returns whether it came sooner than the interval after the previous one.
    pub(crate) async fn device_poll_too_soon(
        &self,
        key: &str,
        record: &DeviceRecord,
    ) -> Result<bool, EntraError> {
        let now = now_ms();
        let previous = self
            .store
            .get_ephemeral(POLL_KIND, key, now / 1000)
            .await?
            .and_then(|v| v.parse::<i64>().ok());
        self.store
            .put_ephemeral(
                POLL_KIND,
                key,
                &now.to_string(),
                self.device_record_expiry(record),
            )
            .await?;
        Ok(previous.is_some_and(|p| now - p < record.interval * 1000))
    }

    fn device_record_expiry(&self, record: &DeviceRecord) -> i64 {
        record.expires_at + EXPIRED_GRACE
    }

    /// The page where the person types the user code (`verification_uri`).
    pub(crate) fn verification_uri(&self) -> String {
        format!("{}/devicelogin", self.config.public_url)
    }
}

/// POST /{tenant}/oauth2/v2.0/devicecode (and the v1 document's /{tenant}/oauth2/devicecode).
pub(crate) async fn device_authorization(
    State(idp): State<Arc<Idp>>,
    Path(tenant_name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, JsonError> {
    let mut fields = LogFields::default();
    let correlation_id = correlation_id(&headers, query.as_deref());
    let fail = |error: EntraError, fields: &LogFields| JsonError {
        error,
        correlation_id: correlation_id.clone(),
        fields: Some(fields.clone()),
    };
    if method != Method::POST {
        return Err(fail(
            EntraError::MethodNotAllowed(method.to_string()),
            &fields,
        ));
    }
    let (dir, _) = tenant(&idp, &tenant_name).map_err(|e| fail(e, &fields))?;
    fields.tenant = Some(dir.tenant.id.clone());
    let params = read_form(&headers, body)
        .await
        .map_err(|e| fail(e, &fields))?;
    if params.get("resource").is_some() {
        return Err(fail(EntraError::ResourceParameterUnsupported, &fields));
    }
    let client_id = params.required("client_id").map_err(|e| fail(e, &fields))?;
    let client = dir
        .app(client_id)
        .filter(|a| a.app_id.eq_ignore_ascii_case(client_id))
        .ok_or_else(|| {
            fail(
                EntraError::UnknownClient {
                    client_id: clip(client_id, 64),
                    tenant: dir.tenant.id.clone(),
                },
                &fields,
            )
        })?
        .clone();
    fields.client = Some(client.app_id.clone());
    let scope = params.required("scope").map_err(|e| fail(e, &fields))?;
    // Every resource must exist and every permission be one it exposes; consent is asked on the
    // page, for all of them, as the authorize endpoint does.
    Scopes::parse(&dir, scope).map_err(|e| fail(e, &fields))?;

    let config = &idp.config;
    let device_code = random_token(48);
    let key = sha256_hex(device_code.as_bytes());
    let record = DeviceRecord {
        client_id: client.app_id.clone(),
        scope: scope.to_owned(),
        expires_at: now() + config.device_code_lifetime,
        interval: config.device_code_interval,
        state: DeviceState::Pending,
    };
    let json = serde_json::to_string(&record)
        .map_err(|e| fail(EntraError::Internal(e.to_string()), &fields))?;
    let store = &idp.store;
    store
        .put_ephemeral(DEVICE_KIND, &key, &json, idp.device_record_expiry(&record))
        .await
        .map_err(|e| fail(e.into(), &fields))?;
    // Two live requests must never share a user code: draw again on the (rare) collision.
    let mut user_code = random_user_code();
    for _ in 0..8 {
        let taken = store
            .get_ephemeral(USER_CODE_KIND, &idp.user_code_key(&user_code), now())
            .await
            .map_err(|e| fail(e.into(), &fields))?
            .is_some();
        if !taken {
            break;
        }
        user_code = random_user_code();
    }
    store
        .put_ephemeral(
            USER_CODE_KIND,
            &idp.user_code_key(&user_code),
            &key,
            // As long as the request, so the page can say "expired" rather than "unknown".
            idp.device_record_expiry(&record),
        )
        .await
        .map_err(|e| fail(e.into(), &fields))?;

    let uri = idp.verification_uri();
    let body = json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": uri,
        "expires_in": config.device_code_lifetime,
        "interval": config.device_code_interval,
        "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate."),
    });
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response.extensions_mut().insert(fields);
    Ok(response)
}
