//! What the inbox crate's tests share: times in the municipality's zone, the inbox served on a
//! free loopback port, and reading cookies and hidden form fields from responses. A test file
//! takes it with `mod support;`; not every file uses every helper, hence the `dead_code`
//! allowance.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;

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
