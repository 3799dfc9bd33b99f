//! `/healthz` (the process answers) and `/readyz` (the database answers too, and the instance is
//! not shutting down), for load balancers and orchestrators.
use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;

use crate::AppState;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    // Shutting down: the load balancer should send no new requests here.
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        );
    }
    let ping = tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await;
    match ping {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "checks": { "database": "ok" } })),
        ),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check: database error");
            unavailable("error")
        }
        Err(_) => {
            tracing::warn!("readiness check: database did not answer within 2 s");
            unavailable("timeout")
        }
    }
}

fn unavailable(reason: &str) -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "checks": { "database": reason } })),
    )
}
