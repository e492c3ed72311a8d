//! The live dashboard (`/dashboard`) for everyone in the organisation, and Prometheus
//! `/metrics` for operations. Both read the same runtime the channels write through: the counters
//! only the process knows (`Runtime::metrics`) and, at request time, the store's open
//! escalations, outbox backlog and today's messages. The page refreshes itself with a meta tag
//! (no script), and shows no customer text, so it can hang on a screen in the office.
//!
//! Reading today's history is the expensive part, so the dashboard's figures are made at most
//! once per [`FRESH`], however many screens ask.
//!
//! **Access.** Both pages show the organisation's workload, on the same listener as the public
//! web chat, so by default they need an inbox login (a session cookie), an inbox API token or
//! the admin token (`Authorization: Bearer …`, which is how Prometheus scrapes); without one the
//! dashboard redirects to the inbox login and `/metrics` answers 401. `[server]
//! public_dashboard = true` opens both, for a wall screen on a closed network. Every answer
//! carries the same security headers as the inbox pages.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, TimeZone, Utc};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use webcare_adapters::gateway::Gateway;
use webcare_engine::html::escape;
use webcare_engine::report::{self, ReportOptions, spike};
use webcare_engine::{Runtime, store};

/// An escalation is at risk when its deadline is this close.
const AT_RISK: i64 = 60;

/// How old the dashboard's figures may be.
const FRESH: std::time::Duration = std::time::Duration::from_secs(15);

#[derive(Clone)]
struct Dashboard {
    gateway: Gateway,
    /// The last figures with today's traffic, and when they were made.
    today: Arc<tokio::sync::Mutex<Option<Made>>>,
}

type Made = (Instant, Arc<Snapshot>);

/// Who may see the dashboard and `/metrics` (see the module docs).
#[derive(Clone, Default)]
pub struct Access {
    /// `[server] public_dashboard`: no login needed.
    pub public: bool,
    /// Sessions and API tokens of the inbox, when it runs.
    pub inbox: Option<webcare_inbox::Inbox>,
    pub admin_token: Option<webcare_adapters::secret::Secret>,
}

impl Access {
    async fn allows(&self, headers: &axum::http::HeaderMap) -> bool {
        if self.public {
            return true;
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let (Some(token), Some(given)) = (&self.admin_token, bearer)
            && token.matches(given.as_bytes())
        {
            return true;
        }
        match &self.inbox {
            Some(inbox) => inbox.authenticate(headers).await,
            None => false,
        }
    }
}

pub fn routes(gateway: Gateway, access: Access) -> Router {
    Router::new()
        .route("/dashboard", get(dashboard))
        .route("/metrics", get(metrics))
        .with_state(Dashboard {
            gateway,
            today: Arc::default(),
        })
        .layer(axum::middleware::from_fn_with_state(access, guard))
}

/// Refuses a request without a login or token, and puts the security headers on every answer.
async fn guard(
    State(access): State<Access>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = if access.allows(request.headers()).await {
        next.run(request).await
    } else if request.uri().path() == "/dashboard" {
        axum::response::Redirect::to("/inbox/login").into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            "a login or token is required: `Authorization: Bearer <inbox API token or admin token>`\n",
        )
            .into_response()
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, axum::http::HeaderValue::from_static(value));
    }
    response
}

/// What both pages read from the store, on a blocking thread.
struct Snapshot {
    now: DateTime<Utc>,
    crisis: bool,
    messages_today: u64,
    actions_today: BTreeMap<&'static str, u64>,
    /// Team → (open, at risk, breached).
    queues: BTreeMap<String, (u64, u64, u64)>,
    pending_outbox: u64,
    trending: Vec<report::TopicTrend>,
    spikes: Vec<spike::Spike>,
}

fn snapshot(runtime: &Runtime, now: DateTime<Utc>, with_today: bool) -> anyhow::Result<Snapshot> {
    let store = runtime.store();
    let rulebook = runtime.rulebook();
    let mut queues: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for esc in store.open_escalations()? {
        let q = queues.entry(esc.team.clone()).or_default();
        q.0 += 1;
        match esc.sla_deadline {
            Some(d) if d < now => q.2 += 1,
            Some(d) if d < now + Duration::minutes(AT_RISK) => q.1 += 1,
            _ => {}
        }
    }
    let pending_outbox = store.stats()?.pending_outbox;
    let mut snap = Snapshot {
        now,
        crisis: runtime.crisis_mode(),
        messages_today: 0,
        actions_today: BTreeMap::new(),
        queues,
        pending_outbox,
        trending: Vec::new(),
        spikes: Vec::new(),
    };
    if !with_today {
        return Ok(snap);
    }
    let tz = rulebook.teams().timezone;
    let midnight = now
        .with_timezone(&tz)
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|m| tz.from_local_datetime(&m).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now - Duration::hours(24));
    // Today against the same stretch of yesterday, and the last hour against the day before it.
    let since = midnight.min(now - Duration::hours(1));
    let until = now + Duration::seconds(1);
    let options = ReportOptions::new(since, until, now);
    let from = options.previous_since().min(now - Duration::hours(25));
    let mut messages = Vec::new();
    for stored in store::history(store.as_ref(), Some(from)) {
        messages.push(stored?);
    }
    for m in &messages {
        if m.message.received_at >= midnight {
            snap.messages_today += 1;
            *snap
                .actions_today
                .entry(m.decision.action.name())
                .or_default() += 1;
        }
    }
    let rules = spike::SpikeRules {
        baseline: Duration::hours(24),
        ..spike::SpikeRules::default()
    };
    snap.spikes = spike::detect(&rules, now, messages.iter().cloned());
    let today = report::build(
        &options,
        rulebook.teams(),
        &rulebook.default_team,
        messages,
        &[],
        &[],
    );
    snap.trending = today.trending;
    Ok(snap)
}

async fn read(gateway: &Gateway, with_today: bool) -> Result<Snapshot, Response> {
    let runtime = Arc::clone(gateway.runtime());
    let now = gateway.now();
    tokio::task::spawn_blocking(move || snapshot(&runtime, now, with_today))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| format!("{e:#}")))
        .map_err(|error| {
            tracing::error!(%error, "dashboard: cannot read the store");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the store\n").into_response()
        })
}

async fn dashboard(State(d): State<Dashboard>) -> Response {
    // Held while the figures are made, so requests that arrive meanwhile wait for them.
    let mut today = d.today.lock().await;
    let snap = match &*today {
        Some((made, snap)) if made.elapsed() < FRESH => Arc::clone(snap),
        _ => match read(&d.gateway, true).await {
            Ok(snap) => {
                let snap = Arc::new(snap);
                *today = Some((Instant::now(), Arc::clone(&snap)));
                snap
            }
            Err(response) => return response,
        },
    };
    drop(today);
    Html(page(&snap)).into_response()
}

fn page(s: &Snapshot) -> String {
    let mut out = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"60\"><title>Webcare dashboard</title><style>body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2933}.tiles{display:flex;flex-wrap:wrap;gap:1rem}.tile{border:1px solid #d9e2ec;border-radius:6px;padding:1rem;min-width:12rem}.tile b{display:block;font-size:2rem}.on{background:#ffe3e3;border-color:#e12d39}.bad{color:#ab091e}table{border-collapse:collapse}td,th{padding:.3rem .8rem;border-bottom:1px solid #e4e7eb;text-align:left}</style></head><body><h1>Webcare now</h1>",
    );
    let _ = write!(
        out,
        "<p>{} UTC; refreshes every minute.</p><div class=\"tiles\">",
        s.now.format("%Y-%m-%d %H:%M")
    );
    let _ = write!(
        out,
        "<div class=\"tile{}\" id=\"crisis\"><b>{}</b>crisis mode</div>",
        if s.crisis { " on" } else { "" },
        if s.crisis { "ON" } else { "off" }
    );
    let _ = write!(
        out,
        "<div class=\"tile\" id=\"today\"><b>{}</b>messages today ({})</div>",
        s.messages_today,
        s.actions_today
            .iter()
            .map(|(a, n)| format!("{a} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (open, risk, breached) = s
        .queues
        .values()
        .fold((0, 0, 0), |a, q| (a.0 + q.0, a.1 + q.1, a.2 + q.2));
    let _ = write!(
        out,
        "<div class=\"tile\"><b>{open}</b>open escalations</div><div class=\"tile\"><b class=\"{}\">{}</b>SLA at risk or breached</div><div class=\"tile\"><b>{}</b>replies waiting to be sent</div></div>",
        if risk + breached > 0 { "bad" } else { "" },
        risk + breached,
        s.pending_outbox
    );
    out.push_str("<h2>Escalations per team</h2><table id=\"queues\"><tr><th>team</th><th>open</th><th>SLA at risk (&lt; 1 h)</th><th>SLA breached</th></tr>");
    for (team, (open, risk, breached)) in &s.queues {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{open}</td><td>{risk}</td><td>{breached}</td></tr>",
            escape(team)
        );
    }
    out.push_str("</table><h2>Early warning</h2>");
    if s.spikes.is_empty() {
        out.push_str("<p id=\"spikes\">Nothing unusual in the last hour.</p>");
    } else {
        out.push_str("<ul id=\"spikes\">");
        for spike in &s.spikes {
            let _ = write!(out, "<li class=\"bad\">{}</li>", escape(&spike.describe()));
        }
        out.push_str("</ul>");
    }
    out.push_str("<h2>Trending today</h2><table id=\"trending\"><tr><th>topic</th><th>today</th><th>same time yesterday</th></tr>");
    for t in &s.trending {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&t.topic),
            t.count,
            t.previous
        );
    }
    out.push_str("</table></body></html>\n");
    out
}

async fn metrics(State(d): State<Dashboard>) -> Response {
    let snap = match read(&d.gateway, false).await {
        Ok(snap) => snap,
        Err(response) => return response,
    };
    // The store's gauges are read at scrape time, so they live in a registry of this scrape;
    // the process's counters come from the runtime's own registry, in the same exposition.
    let mut registry = Registry::default();
    let open = Family::<[(&'static str, String); 1], Gauge>::default();
    let breached = Family::<[(&'static str, String); 1], Gauge>::default();
    for (team, (open_count, _, breached_count)) in &snap.queues {
        open.get_or_create(&[("team", team.clone())])
            .set(i64::try_from(*open_count).unwrap_or(i64::MAX));
        breached
            .get_or_create(&[("team", team.clone())])
            .set(i64::try_from(*breached_count).unwrap_or(i64::MAX));
    }
    registry.register(
        "webcare_escalations_open",
        "Escalations open or claimed, per team",
        open,
    );
    registry.register(
        "webcare_sla_breached",
        "Open escalations past their SLA deadline, per team",
        breached,
    );
    let pending = Gauge::<i64>::default();
    pending.set(i64::try_from(snap.pending_outbox).unwrap_or(i64::MAX));
    registry.register(
        "webcare_outbox_pending",
        "Replies waiting to be sent",
        pending,
    );
    let crisis = Gauge::<i64>::default();
    crisis.set(i64::from(snap.crisis));
    registry.register("webcare_crisis_mode", "Whether crisis mode is on", crisis);

    let mut out = String::new();
    d.gateway.runtime().metrics().encode_into(&mut out);
    // Writing into a String cannot fail.
    let _ = encode_registry(&mut out, &registry);
    let _ = encode_eof(&mut out);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// How often the early-warning detector looks at the last hour.
const EARLY_WARNING_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs the spike detector every few minutes until `stop`, raising each spike as an urgent
/// escalation to the rulebook's default team (the hub); see `report::spike::raise_alerts`.
pub async fn early_warning(gateway: Gateway, stop: impl Future<Output = ()> + Send + 'static) {
    let mut stop = std::pin::pin!(stop);
    let mut ticks = tokio::time::interval(EARLY_WARNING_EVERY);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticks.tick() => {}
        }
        let runtime = Arc::clone(gateway.runtime());
        let now = gateway.now();
        let raised = tokio::task::spawn_blocking(move || {
            let rulebook = runtime.rulebook();
            spike::raise_alerts(
                runtime.store().as_ref(),
                &spike::SpikeRules::default(),
                &rulebook.default_team,
                &rulebook.version,
                now,
            )
        })
        .await;
        match raised {
            Ok(Ok(spikes)) => {
                for spike in spikes {
                    tracing::warn!(topic = %spike.topic, count = spike.count, "{}", spike.describe());
                }
            }
            Ok(Err(error)) => tracing::error!(%error, "early warning: cannot read the store"),
            Err(error) => tracing::error!(%error, "early warning: the check failed"),
        }
    }
}
