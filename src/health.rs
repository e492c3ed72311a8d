//! `/healthz`: whether this instance can take messages in. A load balancer or an orchestrator
//! reads it to stop sending traffic to an instance whose store refuses writes (a full disk,
//! PostgreSQL down), where every message would get 503 anyway, and to send it again once the
//! store takes writes. The answer comes from the runtime's note of the last intake; only while
//! that note says "failing" does a check write to the store (a small durable probe), so a
//! healthy instance answers without any I/O.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use webcare_adapters::gateway::Gateway;

pub fn routes(gateway: Gateway) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(gateway)
}

async fn healthz(State(gateway): State<Gateway>) -> Response {
    if gateway.runtime().intake_failure().is_none() {
        return "ok\n".into_response();
    }
    let runtime = std::sync::Arc::clone(gateway.runtime());
    let now = gateway.now();
    let health = tokio::task::spawn_blocking(move || runtime.intake_health(now)).await;
    match health {
        Ok(Ok(())) => "ok\n".into_response(),
        Ok(Err(failure)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "unhealthy: intake cannot write to the store since {} ({}); messages are refused with 503 until it can\n",
                failure.since.format("%Y-%m-%d %H:%M:%S UTC"),
                failure.reason
            ),
        )
            .into_response(),
        Err(stopped) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: the health check did not finish ({stopped})\n"),
        )
            .into_response(),
    }
}
