//! Monitoring → Log stream: the app's output and the platform's reasons for refused requests,
//! read from the app's SCM endpoint (`/logstream`) with the person's Resource Manager token, as
//! the portal does. Without JavaScript the page frames the raw stream, which browsers show as it
//! arrives.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use reqwest::Method;
use serde_json::Value;

use crate::Portal;
use crate::arm::site_path;

use crate::pages::{error_page, signed_in, webapp_page};

pub(crate) async fn show(
    State(portal): State<Arc<Portal>>,
    Path((group, site)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let signed = match signed_in(&portal, &headers, &uri).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut body = String::new();
    body.push_str(
        "<p class=\"hint\">The app's output and, for every request its authentication refused, \
the status and the reason (<code>easyauth: 401 ...</code>). New lines appear as they are \
written; reload to reconnect. The same stream: <code>az webapp log tail</code>.</p>\
<iframe src=\"logstream/raw\" title=\"Log stream\" style=\"width:100%;height:65vh;border:1px solid #ccc\"></iframe>",
    );
    webapp_page(&signed, &group, &site, "Log stream", &body)
}

/// The SCM host of a web app (`hostNameSslStates` of type `Repository`).
fn scm_host(site: &Value) -> Option<String> {
    site["properties"]["hostNameSslStates"]
        .as_array()?
        .iter()
        .find(|h| h["hostType"].as_str() == Some("Repository"))
        .and_then(|h| h["name"].as_str())
        .map(str::to_owned)
}

/// The raw stream, relayed chunk by chunk.
pub(crate) async fn raw(
    State(portal): State<Arc<Portal>>,
    Path((group, site)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let signed = match signed_in(&portal, &headers, &uri).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let resource = match portal
        .arm(&signed.token, Method::GET, &site_path(&group, &site), None)
        .await
    {
        Ok(v) => v,
        Err(e) => return error_page(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    let Some(host) = scm_host(&resource) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "This web app has no SCM endpoint, so there is no log stream.",
        );
    };
    let upstream = match portal
        .stream_http
        .get(format!("https://{host}/logstream"))
        .bearer_auth(&signed.token)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            return error_page(
                StatusCode::BAD_GATEWAY,
                &format!("The log stream answered {status}: {}", text.trim()),
            );
        }
        Err(e) => {
            return error_page(
                StatusCode::BAD_GATEWAY,
                &format!("The log stream did not answer: {e}"),
            );
        }
    };
    let stream = futures_util::stream::unfold(upstream, |mut r| async move {
        match r.chunk().await {
            Ok(Some(bytes)) => Some((Ok::<_, std::io::Error>(bytes), r)),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e)), r)),
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
