//! The identity provider's Prometheus metrics (docs/operations.md lists them): requests by
//! endpoint and status with their latency, tokens issued by grant, and store failures. They
//! exist only when the operator asked for them ([`IdpConfig::metrics`](crate::IdpConfig));
//! labels are fixed route names and grant names, never a path, a client or a user.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::log::LogFields;

/// Store failures anywhere in the identity provider (every `StoreError` becomes an answer
/// through one of two conversions, which count here). Process-wide: the conversions have no
/// identity provider at hand, and one process serves one.
static STORE_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Counts one store failure.
pub(crate) fn store_error() {
    STORE_ERRORS.fetch_add(1, Ordering::Relaxed);
}

const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GrantLabels {
    grant: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The identity provider's metrics, registered in the operator's registry.
#[derive(Debug)]
pub struct IdpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    tokens: Family<GrantLabels, Counter>,
}

impl IdpMetrics {
    /// Registers the identity provider's metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Arc<IdpMetrics> {
        let metrics = IdpMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            tokens: Family::default(),
        };
        registry.register(
            "easyauth_idp_requests",
            "Requests the identity provider answered, by endpoint and HTTP status",
            metrics.requests.clone(),
        );
        registry.register(
            "easyauth_idp_request_duration_seconds",
            "Time to the response headers, by endpoint",
            metrics.duration.clone(),
        );
        registry.register(
            "easyauth_idp_tokens_issued",
            "Token responses the token endpoint gave, by grant",
            metrics.tokens.clone(),
        );
        registry.register_collector(Box::new(StoreErrors));
        Arc::new(metrics)
    }
}

/// The middleware that counts each request.
pub(crate) async fn record(
    State(metrics): State<Arc<IdpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("not_found", |p| endpoint_name(p.as_str()));
    let response = next.run(request).await;
    let status = response.status();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            endpoint,
            status: status.as_u16(),
        })
        .inc();
    metrics
        .duration
        .get_or_create(&EndpointLabels { endpoint })
        .observe(started.elapsed().as_secs_f64());
    if endpoint == "token"
        && status.is_success()
        && let Some(grant) = response
            .extensions()
            .get::<LogFields>()
            .and_then(|f| f.grant)
    {
        metrics.tokens.get_or_create(&GrantLabels { grant }).inc();
    }
    response
}

/// A route's fixed name, from the route it matched (never the request's own path).
fn endpoint_name(route: &str) -> &'static str {
    match route {
        "/{tenant}/v2.0/.well-known/openid-configuration"
        | "/{tenant}/.well-known/openid-configuration" => "discovery",
        "/{tenant}/discovery/v2.0/keys" | "/{tenant}/discovery/keys" => "jwks",
        "/common/discovery/instance" => "instance_discovery",
        "/{tenant}/oauth2/v2.0/authorize" => "authorize",
        "/{tenant}/oauth2/authorize" => "authorize_v1",
        "/{tenant}/login" => "sign_in",
        "/{tenant}/consent" => "consent",
        "/{tenant}/oauth2/v2.0/token" | "/{tenant}/oauth2/token" => "token",
        "/{tenant}/oauth2/v2.0/devicecode" | "/{tenant}/oauth2/devicecode" => {
            "device_authorization"
        }
        "/devicelogin" | "/{tenant}/oauth2/deviceauth" => "device_login",
        "/{tenant}/oauth2/v2.0/logout" | "/{tenant}/oauth2/logout" => "logout",
        "/v1.0" | "/v1.0/" | "/v1.0/{*rest}" => "graph",
        "/oidc/userinfo" => "userinfo",
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        _ => "other",
    }
}

/// `easyauth_idp_store_errors_total`, read at scrape time.
#[derive(Debug)]
struct StoreErrors;

impl Collector for StoreErrors {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(STORE_ERRORS.load(Ordering::Relaxed));
        let metric = encoder.encode_descriptor(
            "easyauth_idp_store_errors",
            "Store operations that failed while answering a request.",
            None,
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_router_has_a_name() {
        // Every `.route("...")` of the router's source: a route added without a name here would
        // be counted as "other".
        let sources = [include_str!("endpoints/mod.rs")];
        let mut seen = 0;
        for source in sources {
            for piece in source.split(".route(").skip(1) {
                let Some(route) = piece.trim_start().strip_prefix('"') else {
                    continue;
                };
                let route = &route[..route.find('"').unwrap_or(0)];
                seen += 1;
                assert_ne!(
                    endpoint_name(route),
                    "other",
                    "{route} has no endpoint name"
                );
            }
        }
        assert!(seen >= 20, "only {seen} routes found");
        assert_eq!(endpoint_name("/some/raw/path"), "other");
    }
}
