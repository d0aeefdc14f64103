//! The module's Prometheus metrics (docs/operations.md lists them). They exist only when the
//! operator asked for an operations listener ([`crate::Module::instrument`]); otherwise the
//! module holds `None` and a request pays one branch.
//!
//! Per request: the two common outcomes (passed, anonymous) are counters resolved once; other
//! outcomes look their counter up in a family keyed by two `Copy` enums (no allocation). No lock
//! is held across an await. Label values are fixed words: never a path, a user or a token.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::oidc::{FetchTally, JwksCache};
use crate::refusal::ReasonCode;
use crate::session_store::{SessionRecord, SessionStore, SessionStoreError};

/// Latency buckets in seconds, from a cache hit (100 µs) to an upstream timeout.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// What the module did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    /// Went to the app with a signed-in identity.
    Passed,
    /// Went to the app anonymously (AllowAnonymous, an excluded path, a CORS preflight).
    Anonymous,
    /// A `/.auth/*` route answered (sign-in, callback, `/.auth/me`, refresh, logout...).
    AuthEndpoint,
    /// A browser was sent to sign in (RedirectToLoginPage).
    RedirectedToLogin,
    /// An http request was sent to https (requireHttps).
    RedirectedToHttps,
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 404 (Return404).
    NotFound,
    /// 400 (no usable Host).
    BadRequest,
    /// Any other answer of the module's own (e.g. 503 when the token store failed).
    Refused,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Anonymous => "anonymous",
            Outcome::AuthEndpoint => "auth_endpoint",
            Outcome::RedirectedToLogin => "redirected_to_login",
            Outcome::RedirectedToHttps => "redirected_to_https",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Forbidden => "forbidden",
            Outcome::NotFound => "not_found",
            Outcome::BadRequest => "bad_request",
            Outcome::Refused => "refused",
        }
    }

    /// A refusal's outcome, from the status the module answered with.
    pub(crate) fn of_refusal(status: axum::http::StatusCode) -> Outcome {
        match status.as_u16() {
            302 | 303 => Outcome::RedirectedToLogin,
            307 | 308 => Outcome::RedirectedToHttps,
            400 => Outcome::BadRequest,
            401 => Outcome::Unauthorized,
            403 => Outcome::Forbidden,
            404 => Outcome::NotFound,
            _ => Outcome::Refused,
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// The refusal's reason code, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Reason(pub(crate) Option<ReasonCode>);

impl EncodeLabelValue for Reason {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0.map_or("none", ReasonCode::as_str))
    }
}

/// Marks a response the module refused with (set by [`crate::respond::refuse`]), so the
/// request's outcome can name the reason without threading it through every stage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RefusedFor(pub(crate) ReasonCode);

/// Marks a 502/504 the proxy answered for the app, with why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum UpstreamFailure {
    /// The app could not be reached (connection refused, reset, bad response).
    Unreachable,
    /// The app did not answer within the upstream timeout.
    Timeout,
    /// The app switched protocols without being asked.
    Protocol,
    /// The request target could not be turned into the app's URI.
    BadTarget,
}

impl EncodeLabelValue for UpstreamFailure {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            UpstreamFailure::Unreachable => "unreachable",
            UpstreamFailure::Timeout => "timeout",
            UpstreamFailure::Protocol => "protocol",
            UpstreamFailure::BadTarget => "bad_target",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    outcome: Outcome,
    reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: UpstreamFailure,
}

/// A session store operation, as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum StoreOperation {
    Save,
    Load,
    Delete,
    Revoke,
    AdmitCarried,
    FindByAccessToken,
    Check,
    /// Taking, renewing and giving back the refresh lease.
    Lease,
}

impl EncodeLabelValue for StoreOperation {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            StoreOperation::Save => "save",
            StoreOperation::Load => "load",
            StoreOperation::Delete => "delete",
            StoreOperation::Revoke => "revoke",
            StoreOperation::AdmitCarried => "admit_carried",
            StoreOperation::FindByAccessToken => "find_by_access_token",
            StoreOperation::Check => "check",
            StoreOperation::Lease => "lease",
        })
    }
}

/// Success or failure, as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum OpResult {
    Ok,
    Error,
}

impl EncodeLabelValue for OpResult {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            OpResult::Ok => "ok",
            OpResult::Error => "error",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StoreOpLabels {
    operation: StoreOperation,
    result: OpResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabels {
    operation: StoreOperation,
}

/// How a `/.auth/refresh` ended, as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RefreshResult {
    /// New tokens were stored.
    Ok,
    /// The identity provider refused the refresh token.
    Refused,
    /// Nothing to refresh: no session, an expired one, no refresh token, an unknown provider.
    Rejected,
    /// The provider could not be reached or the token store failed.
    Error,
}

impl RefreshResult {
    /// From the answer `/.auth/refresh` gave.
    pub(crate) fn of(response: &axum::response::Response) -> RefreshResult {
        match response.extensions().get::<RefusedFor>().map(|r| r.0) {
            None if response.status().is_success() => RefreshResult::Ok,
            Some(ReasonCode::RefreshRefused) => RefreshResult::Refused,
            Some(
                ReasonCode::ProviderUnavailable
                | ReasonCode::TokenStoreFailed
                | ReasonCode::Internal,
            )
            | None => RefreshResult::Error,
            Some(_) => RefreshResult::Rejected,
        }
    }
}

impl EncodeLabelValue for RefreshResult {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            RefreshResult::Ok => "ok",
            RefreshResult::Refused => "refused",
            RefreshResult::Rejected => "rejected",
            RefreshResult::Error => "error",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefreshLabels {
    result: RefreshResult,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The module's metrics, registered in the operator's registry.
#[derive(Debug)]
pub(crate) struct ModuleMetrics {
    requests: Family<RequestLabels, Counter>,
    /// `requests{outcome="passed",reason="none"}`, resolved once: the common case.
    passed: Counter,
    /// `requests{outcome="anonymous",reason="none"}`.
    anonymous: Counter,
    duration: Histogram,
    upstream_duration: Histogram,
    in_flight: Gauge,
    upstream_errors: Family<KindLabels, Counter>,
    store_duration: Family<StoreOpLabels, Histogram, fn() -> Histogram>,
    store_errors: Family<OperationLabels, Counter>,
    refreshes: Family<RefreshLabels, Counter>,
}

impl ModuleMetrics {
    /// Registers the module's metrics in `registry`; `jwks` and `discovery` (one per provider)
    /// are read at scrape time for the fetch counts they keep themselves.
    pub(crate) fn register(
        registry: &mut Registry,
        jwks: JwksCache,
        discovery: Vec<Arc<FetchTally>>,
    ) -> ModuleMetrics {
        let requests = Family::<RequestLabels, Counter>::default();
        let passed = requests
            .get_or_create(&RequestLabels {
                outcome: Outcome::Passed,
                reason: Reason(None),
            })
            .clone();
        let anonymous = requests
            .get_or_create(&RequestLabels {
                outcome: Outcome::Anonymous,
                reason: Reason(None),
            })
            .clone();
        let metrics = ModuleMetrics {
            requests,
            passed,
            anonymous,
            duration: latency_histogram(),
            upstream_duration: latency_histogram(),
            in_flight: Gauge::default(),
            upstream_errors: Family::default(),
            store_duration: Family::new_with_constructor(latency_histogram),
            store_errors: Family::default(),
            refreshes: Family::default(),
        };
        registry.register(
            "easyauth_module_requests",
            "Requests the module handled, by outcome and refusal reason code",
            metrics.requests.clone(),
        );
        registry.register(
            "easyauth_module_request_duration_seconds",
            "Time from the request reaching the module to its response headers, the app's time included",
            metrics.duration.clone(),
        );
        registry.register(
            "easyauth_module_upstream_duration_seconds",
            "Time the app took to send its response headers, for requests the module passed on",
            metrics.upstream_duration.clone(),
        );
        registry.register(
            "easyauth_module_requests_in_flight",
            "Requests in the module now",
            metrics.in_flight.clone(),
        );
        registry.register(
            "easyauth_module_upstream_errors",
            "Requests the proxy answered for the app with 502 or 504, by kind",
            metrics.upstream_errors.clone(),
        );
        registry.register(
            "easyauth_module_session_store_operation_duration_seconds",
            "Session store operations (with the token store, answers from its short read cache included), by operation and result",
            metrics.store_duration.clone(),
        );
        registry.register(
            "easyauth_module_session_store_errors",
            "Session store operations that failed, by operation",
            metrics.store_errors.clone(),
        );
        registry.register(
            "easyauth_module_refreshes",
            "Calls of /.auth/refresh, by result",
            metrics.refreshes.clone(),
        );
        registry.register_collector(Box::new(FetchCounts { jwks, discovery }));
        metrics
    }

    /// Counts one request and its latency. `started` is when it reached the module.
    pub(crate) fn request(&self, outcome: Outcome, reason: Option<ReasonCode>, started: Instant) {
        match (outcome, reason) {
            (Outcome::Passed, None) => self.passed.inc(),
            (Outcome::Anonymous, None) => self.anonymous.inc(),
            _ => self
                .requests
                .get_or_create(&RequestLabels {
                    outcome,
                    reason: Reason(reason),
                })
                .inc(),
        };
        self.duration.observe(started.elapsed().as_secs_f64());
    }

    /// A request in the module until the guard drops (also when the client goes away).
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    pub(crate) fn upstream(&self, took: Duration, failure: Option<UpstreamFailure>) {
        self.upstream_duration.observe(took.as_secs_f64());
        if let Some(kind) = failure {
            self.upstream_errors
                .get_or_create(&KindLabels { kind })
                .inc();
        }
    }

    pub(crate) fn refresh(&self, result: RefreshResult) {
        self.refreshes
            .get_or_create(&RefreshLabels { result })
            .inc();
    }

    fn store_operation(&self, operation: StoreOperation, ok: bool, took: Duration) {
        let result = if ok { OpResult::Ok } else { OpResult::Error };
        self.store_duration
            .get_or_create(&StoreOpLabels { operation, result })
            .observe(took.as_secs_f64());
        if !ok {
            self.store_errors
                .get_or_create(&OperationLabels { operation })
                .inc();
        }
    }
}

/// Decrements the in-flight gauge when the request is done or dropped.
#[derive(Debug)]
pub(crate) struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The JWKS and discovery fetch counts, which the cache and the providers keep themselves
/// (atomics, counted whether or not anyone scrapes), encoded at scrape time.
#[derive(Debug)]
struct FetchCounts {
    jwks: JwksCache,
    discovery: Vec<Arc<FetchTally>>,
}

impl Collector for FetchCounts {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (ok, failed) = self.jwks.fetch_totals();
        encode_results(
            &mut encoder,
            "easyauth_module_jwks_fetches",
            "Fetches of identity providers' signing keys (JWKS), by result.",
            ok,
            failed,
        )?;
        let (ok, failed) = self
            .discovery
            .iter()
            .map(|t| t.totals())
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
        encode_results(
            &mut encoder,
            "easyauth_module_discovery_fetches",
            "Fetches of identity providers' OpenID Connect discovery documents, by result.",
            ok,
            failed,
        )
    }
}

fn encode_results(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    ok: u64,
    failed: u64,
) -> Result<(), std::fmt::Error> {
    let counter = ConstCounter::new(0u64);
    let mut family = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
    for (result, value) in [(OpResult::Ok, ok), (OpResult::Error, failed)] {
        let labels = [("result", result)];
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A session store that times each operation into the metrics.
#[derive(Debug)]
pub(crate) struct MeteredSessions {
    pub(crate) inner: Arc<dyn SessionStore>,
    pub(crate) metrics: Arc<ModuleMetrics>,
}

impl MeteredSessions {
    fn record<T>(
        &self,
        operation: StoreOperation,
        started: Instant,
        result: &Result<T, SessionStoreError>,
    ) {
        self.metrics
            .store_operation(operation, result.is_ok(), started.elapsed());
    }
}

#[async_trait]
impl SessionStore for MeteredSessions {
    async fn save(&self, sid: &str, record: &SessionRecord) -> Result<(), SessionStoreError> {
        let started = Instant::now();
        let result = self.inner.save(sid, record).await;
        self.record(StoreOperation::Save, started, &result);
        result
    }

    async fn load(&self, sid: &str) -> Result<Option<Arc<SessionRecord>>, SessionStoreError> {
        let started = Instant::now();
        let result = self.inner.load(sid).await;
        self.record(StoreOperation::Load, started, &result);
        result
    }

    async fn delete(
        &self,
        sid: &str,
        record: Option<&SessionRecord>,
    ) -> Result<(), SessionStoreError> {
        let started = Instant::now();
        let result = self.inner.delete(sid, record).await;
        self.record(StoreOperation::Delete, started, &result);
        result
    }

    async fn revoke(&self, sid: &str, record: &SessionRecord) -> Result<(), SessionStoreError> {
        let started = Instant::now();
        let result = self.inner.revoke(sid, record).await;
        self.record(StoreOperation::Revoke, started, &result);
        result
    }

    async fn admit_carried(
        &self,
        sid: &str,
        record: &SessionRecord,
    ) -> Result<Option<Arc<SessionRecord>>, SessionStoreError> {
        let started = Instant::now();
        let result = self.inner.admit_carried(sid, record).await;
        self.record(StoreOperation::AdmitCarried, started, &result);
        result
    }

    async fn find_by_access_token(
        &self,
        access_token: &str,
    ) -> Result<Option<(String, Arc<SessionRecord>)>, SessionStoreError> {
        let started = Instant::now();
        let result = self.inner.find_by_access_token(access_token).await;
        self.record(StoreOperation::FindByAccessToken, started, &result);
        result
    }

    async fn check(&self) -> Result<(), SessionStoreError> {
        let started = Instant::now();
        let result = self.inner.check().await;
        self.record(StoreOperation::Check, started, &result);
        result
    }

    async fn try_lease(
        &self,
        sid: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, SessionStoreError> {
        let started = Instant::now();
        let result = self.inner.try_lease(sid, holder, ttl).await;
        self.record(StoreOperation::Lease, started, &result);
        result
    }

    async fn renew_lease(
        &self,
        sid: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, SessionStoreError> {
        let started = Instant::now();
        let result = self.inner.renew_lease(sid, holder, ttl).await;
        self.record(StoreOperation::Lease, started, &result);
        result
    }

    async fn release_lease(&self, sid: &str, holder: &str) -> Result<(), SessionStoreError> {
        let started = Instant::now();
        let result = self.inner.release_lease(sid, holder).await;
        self.record(StoreOperation::Lease, started, &result);
        result
    }
}
