//! The queue page with 10,000 open escalations: how long `GET /inbox` takes (store read,
//! access filter, rendering) for a lead who sees every team and an agent who sees one, plain
//! and with filters and a search over the messages' text (which reads the text of every
//! escalation the filters let through). The target is under 200 ms per page. Run with
//! `cargo bench -p webcare-inbox --bench queue` (numbers go in BENCHMARKS.md).

#![allow(clippy::unwrap_used)] // Why: a benchmark fails loudly on any error, like a test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use chrono::{TimeZone, Utc};
use tower::ServiceExt;
use webcare_adapters::gateway::Gateway;
use webcare_engine::store::{self, Backend, Role, StoreOptions, User};
use webcare_engine::{ChannelKind, Inbound, Intake, ManualClock, Rulebook, Runtime};
use webcare_inbox::auth::hash_password;
use webcare_inbox::{Inbox, InboxConfig};

const ESCALATIONS: usize = 10_000;
const COMPLAINTS: [&str; 3] = [
    "Ik heb een klacht over de afvalinzameling, al drie weken niet opgehaald!",
    "Ik wil een klacht indienen over de behandeling aan de balie",
    "Er is brand in de flat aan de Dorpsstraat!",
];

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&StoreOptions {
        backend: Backend::Redb,
        data_dir: dir.path().join("data"),
        redact: false,
        cache_bytes: None,
        url: None,
    })
    .unwrap();
    let rulebook = Rulebook::embedded().unwrap();
    let start = Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap();

    // Fill: many writers at once, so the store's group commit shares the fsyncs.
    let filled = Instant::now();
    let rulebook = Arc::new(rulebook);
    let threads = 32;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (store, rulebook) = (Arc::clone(&store), Arc::clone(&rulebook));
            scope.spawn(move || {
                for i in (t..ESCALATIONS).step_by(threads) {
                    let at = start + chrono::Duration::seconds(i as i64);
                    let mut m = Inbound::from_text(
                        format!("m{i}"),
                        ChannelKind::Http,
                        COMPLAINTS[i % COMPLAINTS.len()],
                        at,
                    );
                    m.conversation = format!("c{i}");
                    m.author = format!("citizen{i}");
                    Intake::new(&rulebook, store.as_ref())
                        .accept(m, at)
                        .unwrap();
                }
            });
        }
    });
    let open = store.open_escalations().unwrap().len();
    println!(
        "filled {open} open escalations in {:.1} s",
        filled.elapsed().as_secs_f64()
    );

    let runtime = Arc::new(Runtime::new(
        Rulebook::embedded().unwrap(),
        Arc::clone(&store),
    ));
    let clock = ManualClock::shared(start + chrono::Duration::hours(4));
    let gateway = Gateway::new(runtime).with_clock(clock);
    let now = gateway.now();
    for (login, role, teams) in [
        ("dana", Role::Lead, vec![]),
        ("anna", Role::Agent, vec!["webcare".to_owned()]),
    ] {
        store
            .put_user(
                User {
                    login: login.into(),
                    name: login.into(),
                    role,
                    teams,
                    password_hash: hash_password("pw").unwrap(),
                    created_at: now,
                },
                "bench",
                now,
            )
            .unwrap();
    }
    let inbox = Inbox::new(gateway, InboxConfig::default(), None);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        for (login, path) in [
            ("dana", "/inbox"),
            ("anna", "/inbox"),
            // A filter and a search: the text of every unclaimed webcare escalation is read and searched (a third match).
            ("anna", "/inbox?team=webcare&unassigned=1&q=drie+weken"),
            // A search over all 10,000 (a lead, no filter) that matches a third of them.
            ("dana", "/inbox?q=brand+dorpsstraat"),
            // Filters and a search that match nothing.
            (
                "dana",
                "/inbox?status=open&channel=http&priority=low&q=paspoort",
            ),
        ] {
            let cookie = login_cookie(&inbox, login).await;
            let mut times = Vec::new();
            let mut size = 0;
            for _ in 0..20 {
                let request = Request::get(path)
                    .header(header::COOKIE, format!("webcare_session={cookie}"))
                    .body(Body::empty())
                    .unwrap();
                let begun = Instant::now();
                let response = inbox.routes().oneshot(request).await.unwrap();
                assert_eq!(response.status(), 200, "{path}");
                let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap();
                times.push(begun.elapsed());
                size = body.len();
            }
            times.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "GET {path} as {login}: median {:.1} ms, min {:.1} ms, max {:.1} ms, page {} KiB",
                ms(times[times.len() / 2]),
                ms(times[0]),
                ms(times[times.len() - 1]),
                size / 1024
            );
        }
    });
}

async fn login_cookie(inbox: &Inbox, login: &str) -> String {
    let form = inbox
        .routes()
        .oneshot(Request::get("/inbox/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let token = form
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.strip_prefix("webcare_login="))
        .unwrap()
        .to_owned();
    let request = Request::post("/inbox/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("webcare_login={token}"))
        .body(Body::from(format!(
            "csrf={token}&login={login}&password=pw"
        )))
        .unwrap();
    let response = inbox.routes().oneshot(request).await.unwrap();
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()?
                .strip_prefix("webcare_session=")
                .map(str::to_owned)
        })
        .unwrap()
}
