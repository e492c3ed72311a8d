//! What the inbox crate's tests share: a gateway on a fresh store and a virtual clock, times in
//! the municipality's zone, the inbox served on a free loopback port, and reading cookies and
//! hidden form fields from responses. A test file
//! takes it with `mod support;`; not every file uses every helper, hence the `dead_code`
//! allowance.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;
use webcare_adapters::gateway::Gateway;
use webcare_engine::store::{self, Backend, StoreOptions};
use webcare_engine::{ManualClock, Rulebook, Runtime};

/// The embedded rulebook on a fresh redb store in a temporary folder (keep it as long as the
/// gateway), deciding on a virtual clock that starts at `start`.
pub fn gateway(start: DateTime<Utc>) -> (tempfile::TempDir, Gateway, Arc<ManualClock>) {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&StoreOptions {
        backend: Backend::Redb,
        data_dir: dir.path().join("data"),
        redact: false,
        cache_bytes: None,
        url: None,
    })
    .unwrap();
    let runtime = Arc::new(Runtime::new(Rulebook::embedded().unwrap(), store));
    let clock = ManualClock::shared(start);
    let gateway = Gateway::new(runtime).with_clock(clock.clone());
    (dir, gateway, clock)
}

/// A wall-clock time in Amsterdam, as UTC.
pub fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Amsterdam
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// Serves `app` on a free port of 127.0.0.1 (with the client's address, which the login
/// limits read) and returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

/// The value of cookie `name` set by a response, if it sets a non-empty one.
pub fn set_cookie(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let first = v.split(';').next()?;
            let (key, value) = first.split_once('=')?;
            (key == name && !value.is_empty()).then(|| value.to_owned())
        })
}

/// The value of the first hidden field `name` on a page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap() + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}
