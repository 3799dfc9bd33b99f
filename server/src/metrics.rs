//! Prometheus metrics, served on their own listener (`--metrics-addr`), never on the public one.
//! Recorded with the `metrics` facade and rendered by `metrics-exporter-prometheus`; when no
//! metrics address is set no recorder is installed and every recording is a no-op.
//!
//! - `keyport_verifications_total{endpoint, code}`: verifications by endpoint (`verify`, `auth`)
//!   and outcome code;
//! - `keyport_verify_duration_seconds{endpoint}`: time spent deciding (a histogram);
//! - `keyport_http_requests_total{route, status}` and `keyport_http_request_duration_seconds{route}`:
//!   every request by matched route (`other` for unmatched paths, so made-up paths add no series);
//! - `keyport_keys_cached`: keys in the verifier's index;
//! - `keyport_negative_cache_hits_total`: unknown keys answered from the negative cache;
//! - `keyport_redis_breaker_open` (1 while Redis is bypassed) and
//!   `keyport_redis_breaker_trips_total`, in strict rate-limit mode;
//! - `keyport_change_feed_applied_total` and `keyport_change_feed_lag_seconds`: other instances'
//!   changes applied, and the last one's delay from publication;
//! - `keyport_usage_flush_duration_seconds`, `keyport_usage_flush_failures_total` and
//!   `keyport_usage_flush_age_seconds` (time since usage was last written: the flush's lag);
use std::{
    net::SocketAddr,
    sync::OnceLock,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    extract::{MatchedPath, State},
    http::{Request, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use domain::verification::Code;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::AppState;

/// Bucket bounds of every `_seconds` histogram: 50 µs to 10 s.
const SECONDS_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use (several servers in one process,
/// as in tests, share it).
fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
            .expect("the bucket list is not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// How often histogram samples are folded into their buckets. The recorder only does it when
/// asked (a scrape, or this): without it, every request's samples would pile up in memory until
/// the next scrape, without bound if nothing scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// Binds the metrics listener (and installs the recorder, with its upkeep task).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    static UPKEEP_STARTED: std::sync::Once = std::sync::Once::new();
    UPKEEP_STARTED.call_once(|| {
        tokio::spawn(async {
            let mut tick = tokio::time::interval(UPKEEP);
            loop {
                tick.tick().await;
                handle().run_upkeep();
            }
        });
    });
    handle();
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))
}

/// Serves `GET /metrics` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, state: AppState) {
    let app = Router::new()
        .route("/metrics", get(render))
        .with_state(state);
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "the metrics listener failed");
    }
}

async fn render(State(state): State<AppState>) -> impl IntoResponse {
    metrics::gauge!("keyport_keys_cached").set(state.verifier.len() as f64);
    metrics::counter!("keyport_negative_cache_hits_total")
        .absolute(state.verifier.negative_cache_hits());
    let last_flush = LAST_FLUSH_MS.load(std::sync::atomic::Ordering::Relaxed);
    if last_flush > 0 {
        let age_ms = chrono::Utc::now().timestamp_millis() - last_flush;
        metrics::gauge!("keyport_usage_flush_age_seconds").set(age_ms as f64 / 1000.0);
    }
    let (applied, lag_ms) = domain::feed::applied();
    metrics::counter!("keyport_change_feed_applied_total").absolute(applied);
    metrics::gauge!("keyport_change_feed_lag_seconds").set(lag_ms as f64 / 1000.0);
    if let Some(global) = state.verifier.global_limits() {
        metrics::gauge!("keyport_redis_breaker_open")
            .set(f64::from(u8::from(global.breaker_open())));
        metrics::counter!("keyport_redis_breaker_trips_total").absolute(global.breaker_trips());
    }
    let handle = handle();
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}

/// When usage was last written (Unix milliseconds; 0 before the first flush).
static LAST_FLUSH_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Counts one verification and the time it took.
pub fn verified(endpoint: &'static str, code: Code, started: Instant) {
    metrics::counter!("keyport_verifications_total", "endpoint" => endpoint, "code" => code.as_str())
        .increment(1);
    metrics::histogram!("keyport_verify_duration_seconds", "endpoint" => endpoint)
        .record(started.elapsed());
}

/// Times one usage flush.
pub fn flushed(took: Duration, ok: bool) {
    metrics::histogram!("keyport_usage_flush_duration_seconds").record(took);
    if !ok {
        metrics::counter!("keyport_usage_flush_failures_total").increment(1);
    } else {
        LAST_FLUSH_MS.store(
            chrono::Utc::now().timestamp_millis(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// Middleware: counts every request by matched route and status.
pub async fn track(request: Request<Body>, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("keyport_http_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("keyport_http_request_duration_seconds", "route" => route)
        .record(started.elapsed());
    response
}
