//! Issue 13: two `webcare run` processes on one throwaway PostgreSQL cluster, as behind a load
//! balancer. A crisis switch and a rulebook activation on one reach the other within a second;
//! load goes through the HTTP channel of both, the instance that leads Telegram polling is
//! killed with SIGKILL in the middle of it, and then every acknowledged message is stored and
//! decided exactly once, every reply reaches the callback in order per conversation, and the
//! Telegram poller (the local fake Bot API) and the Discord gateway session (the local fake
//! Discord) move to the survivor within 15 seconds.
//!
//! Bounded: 48 conversations of 5 messages, loopback only, about half a minute.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "../engine/tests/support/postgres.rs"]
mod pg;

#[path = "../adapters/tests/fakes/telegram.rs"]
mod fake_telegram;

#[path = "../adapters/tests/fakes/discord.rs"]
mod fake_discord;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use support::PrintedLines;

const ADMIN: &str = "cluster-test-admin-token-0123456789";
const CONVERSATIONS: usize = 48;
const PER_CONVERSATION: usize = 5;

/// What the callback receiver got: `(Idempotency-Key, conversation, in_reply_to)` in arrival
/// order; the key is the reply's outbox id.
type Received = Arc<Mutex<Vec<(u64, String, String)>>>;

/// What a callback receiver takes to answer each reply (a slow receiver keeps deliveries in
/// flight).
const QUICK: Duration = Duration::ZERO;

/// The team notifications the same server got on `/team` (the webhook of team `webcare`).
type Notified = Arc<Mutex<Vec<Value>>>;

async fn callback_receiver(takes: Duration) -> (String, Received, Notified) {
    let got: Received = Arc::default();
    let notified: Notified = Arc::default();
    let team = Arc::clone(&notified);
    let app = Router::new()
        .route(
            "/team",
            post(move |axum::Json(body): axum::Json<Value>| async move {
                team.lock().unwrap().push(body);
                "ok"
            }),
        )
        .route(
            "/replies",
            post(
                move |State(got): State<Received>,
                      headers: axum::http::HeaderMap,
                      axum::Json(body): axum::Json<Value>| async move {
                    tokio::time::sleep(takes).await;
                    // Known by the key a receiver drops a repeat by, which must be the reply's
                    // outbox id on every attempt (the test compares them with the outbox).
                    let key = headers.get("idempotency-key").and_then(|k| k.to_str().ok());
                    got.lock().unwrap().push((
                        key.and_then(|k| k.parse().ok()).unwrap_or(u64::MAX),
                        body["conversation"].as_str().unwrap().to_owned(),
                        body["in_reply_to"].as_str().unwrap().to_owned(),
                    ));
                    "ok"
                },
            ),
        )
        .with_state(Arc::clone(&got));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/replies", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got, notified)
}

struct Instance {
    child: Child,
    lines: PrintedLines,
    logged: Option<std::thread::JoinHandle<String>>,
    base: String,
}

/// A failed test takes its instances along, and shows what they logged.
impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking()
            && let Some(logged) = self.logged.take()
        {
            eprintln!(
                "--- {} logged:\n{}",
                self.base,
                logged.join().unwrap_or_default()
            );
        }
    }
}

impl Instance {
    fn line(&self, prefix: &str) -> String {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.starts_with(prefix))
            .cloned()
            .unwrap_or_default()
    }
}

/// Starts `webcare run` in `dir` (its own rules copy and config) on the shared database, with
/// Telegram at `telegram` and, when given, Discord at `discord`.
async fn start(dir: &Path, url: &str, telegram: &str, discord: Option<&str>) -> Instance {
    let mut command = support::webcare(dir);
    command
        .args(["--rules", "rules", "run", "--listen", "127.0.0.1:0"])
        .env("WEBCARE_STORE_URL", url)
        .env("WEBCARE_ADMIN_TOKEN", ADMIN)
        .env("TELEGRAM_BOT_TOKEN", fake_telegram::TOKEN)
        .env("WEBCARE_TELEGRAM_API_URL", telegram)
        .env("WEBCARE_TELEGRAM_POLL_TIMEOUT_SECS", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(discord) = discord {
        command
            .env("DISCORD_BOT_TOKEN", fake_discord::TOKEN)
            .env("WEBCARE_DISCORD_API_URL", discord)
            .env("WEBCARE_DISCORD_CHANNELS", "3003");
    }
    let (child, lines, logged) = support::spawn_printing(&mut command);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut instance = Instance {
        child,
        lines,
        logged,
        base: String::new(),
    };
    loop {
        let http = instance.line("http channel: POST http://");
        if !instance.line("outbox: ").is_empty() && !http.is_empty() {
            let addr = http
                .trim_start_matches("http channel: POST http://")
                .split('/')
                .next()
                .unwrap()
                .to_owned();
            instance.base = format!("http://{addr}");
            return instance;
        }
        if let Some(status) = instance.child.try_wait().unwrap() {
            let logged = instance.logged.take().map(|h| h.join().unwrap());
            panic!("webcare run ended ({status}): {logged:?}");
        }
        assert!(Instant::now() < deadline, "webcare run did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(dir: &Path, callback: &str) {
    support::copy_rulebook(dir);
    std::fs::write(
        dir.join("webcare.toml"),
        format!(
            "[store]\nbackend = \"postgres\"\n# A dead instance's replies go out 3 s after its claims end.\nclaim_secs = 3\n\n\
             [http_channel]\ncallback_url = \"{callback}\"\n\n[outbox]\nsend_timeout_secs = 2\n\n\
             [notifications.webcare]\nwebhook = \"{team}\"\n",
            team = callback.replace("/replies", "/team")
        ),
    )
    .unwrap();
}

async fn admin(client: &reqwest::Client, base: &str, path: &str, body: Option<Value>) -> Value {
    let request = match body {
        Some(body) => client.post(format!("{base}{path}")).json(&body),
        None => client.get(format!("{base}{path}")),
    };
    let response = request.bearer_auth(ADMIN).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// Waits until `check` holds; returns how long it took.
async fn within(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts one message, to `first` and, when that instance does not answer (it was killed), to
/// `second`, as a bridge retries; returns the decision.
async fn deliver(
    client: &reqwest::Client,
    bases: &[String; 2],
    first: usize,
    body: &Value,
) -> Value {
    let mut attempt = 0;
    loop {
        let base = &bases[(first + attempt) % 2];
        attempt += 1;
        let sent = client
            .post(format!("{base}/api/v1/messages"))
            .timeout(Duration::from_secs(10))
            .json(body)
            .send()
            .await;
        if let Ok(response) = sent
            && response.status().is_success()
        {
            return response.json().await.unwrap();
        }
        assert!(
            attempt < 40,
            "message {} was never acknowledged",
            body["id"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_one_postgres_and_survive_the_loss_of_one() {
    // The sync PostgreSQL client runs a runtime of its own: never on this one's threads.
    let (_cluster, url) = sql(|| {
        let cluster = pg::Cluster::start();
        let url = cluster.new_database();
        (cluster, url)
    });
    let telegram = fake_telegram::serve(None).await;
    let (discord, discord_events) = fake_discord::serve().await;
    let (callback, received, notified) = callback_receiver(QUICK).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    config(dir_a.path(), &callback);
    config(dir_b.path(), &callback);

    // A starts first and takes the lead; B waits.
    let mut a = start(
        dir_a.path(),
        url.expose(),
        &telegram.url,
        Some(&discord.url),
    )
    .await;
    let mut b = start(
        dir_b.path(),
        url.expose(),
        &telegram.url,
        Some(&discord.url),
    )
    .await;
    assert!(
        a.line("cluster: instance ").contains(" leads"),
        "{:?}",
        a.lines
    );
    assert!(
        b.line("cluster: instance ").contains(" waits"),
        "{:?}",
        b.lines
    );
    let client = reqwest::Client::new();

    // The crisis switch set on A is in force on B within a second, and back.
    admin(
        &client,
        &a.base,
        "/api/v1/crisis",
        Some(json!({"on": true})),
    )
    .await;
    let took = within(Duration::from_secs(1), "crisis on reaches B", async || {
        admin(&client, &b.base, "/api/v1/crisis", None).await["crisis_mode"] == json!(true)
    })
    .await;
    println!("crisis switch reached the other instance in {took:?}");
    admin(
        &client,
        &b.base,
        "/api/v1/crisis",
        Some(json!({"on": null})),
    )
    .await;
    within(
        Duration::from_secs(1),
        "crisis auto reaches A",
        async || {
            admin(&client, &a.base, "/api/v1/crisis", None).await["crisis_mode"] == json!(false)
        },
    )
    .await;

    // A rulebook activated on A is in force on B within a second, and B's decisions name it.
    let before = admin(&client, &b.base, "/api/v1/rulebook", None).await["version"].clone();
    let rulebook_toml = dir_a.path().join("rules/rulebook.toml");
    let mut text = std::fs::read_to_string(&rulebook_toml).unwrap();
    text.push_str("\n# activated on one instance, in force on both\n");
    std::fs::write(&rulebook_toml, text).unwrap();
    let checking = Instant::now();
    let reloaded = admin(&client, &a.base, "/api/v1/rulebook/reload", Some(json!({}))).await;
    let checked = checking.elapsed();
    let version = reloaded["version"].clone();
    assert!(version.is_string() && version != before, "{reloaded}");
    // B compiles the version it reads from the store, as A did before it activated it (in a
    // debug build on a busy machine that takes a second or two): the signal itself takes less
    // than a second (`engine/tests/postgres.rs` measures it alone).
    let took = within(
        Duration::from_secs(1) + checked * 2,
        "the activation reaches B",
        async || admin(&client, &b.base, "/api/v1/rulebook", None).await["version"] == version,
    )
    .await;
    println!(
        "rulebook activation reached the other instance in {took:?} (checking and activating it on the first took {checked:?})"
    );
    let decided = deliver(
        &client,
        &[b.base.clone(), a.base.clone()],
        0,
        &json!({"id": "v-1", "conversation": "v", "text": "Hoe vraag ik een paspoort aan?"}),
    )
    .await;
    assert!(
        decided["rulebook"]
            .as_str()
            .unwrap_or("")
            .contains(version.as_str().unwrap()),
        "{decided}"
    );

    // The inbox and the web chat across instances: a lead logs in on A and is logged in on B,
    // B's open inbox page hears of A's changes, and an agent's reply sent through A reaches the
    // visitor whose socket B holds.
    inbox_and_web_chat_across_instances(&client, &url, &a.base, &b.base, &notified).await;

    // Telegram polling runs on A (the leader): a message is answered.
    telegram.push(fake_telegram::text_update(
        1,
        42,
        7,
        fake_telegram::ann(),
        "Hoe vraag ik een paspoort aan?",
    ));
    within(
        Duration::from_secs(20),
        "the leader polls Telegram",
        async || !telegram.sends().is_empty(),
    )
    .await;

    // The Discord gateway runs on A alone: one session identified, and a message is answered.
    within(
        Duration::from_secs(20),
        "the leader opens the Discord gateway",
        async || !discord.state.lock().unwrap().identified.is_empty(),
    )
    .await;
    let ask_discord = |id: &str, channel: &str| {
        discord_events
            .send(fake_discord::message_json(
                id,
                channel,
                fake_discord::ann(),
                "Hoe vraag ik een paspoort aan?",
                None,
            ))
            .unwrap();
    };
    ask_discord("1001", "2002");
    within(
        Duration::from_secs(20),
        "the leader answers on Discord",
        async || {
            discord
                .sends()
                .iter()
                .any(|(channel, ..)| channel == "2002")
        },
    )
    .await;

    // Load through both instances; A is killed after a third of the messages.
    let bases = [a.base.clone(), b.base.clone()];
    let acked: Arc<Mutex<BTreeMap<String, Value>>> = Arc::default();
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (client, bases, acked) = (client.clone(), bases.clone(), Arc::clone(&acked));
        senders.spawn(async move {
            for c in (worker..CONVERSATIONS).step_by(8) {
                for m in 0..PER_CONVERSATION {
                    let id = format!("c{c}-m{m}");
                    let body = json!({"id": id, "conversation": format!("c{c}"), "text": TEXTS[(c + m) % TEXTS.len()]});
                    let decision = deliver(&client, &bases, (c + m) % 2, &body).await;
                    acked.lock().unwrap().insert(id, decision);
                }
            }
        });
    }
    let total = CONVERSATIONS * PER_CONVERSATION;
    within(Duration::from_secs(60), "a third of the load", async || {
        acked.lock().unwrap().len() >= total / 3
    })
    .await;
    let polls_at_kill = telegram.state.lock().unwrap().offsets.len();
    assert_eq!(
        discord.state.lock().unwrap().most_live,
        1,
        "one gateway session at a time, however long B has been waiting"
    );
    kill(&a.child, "-KILL");
    let killed_at = Instant::now();
    let _ = a.child.wait();
    // A complaint reaches B right after the kill, before or while B takes over the timer that
    // tells the teams: A never saw it, and B must tell it all the same.
    deliver(
        &client,
        &[b.base.clone(), b.base.clone()],
        0,
        &json!({"id": "gap-1", "conversation": "gap", "text": COMPLAINT}),
    )
    .await;
    while let Some(done) = senders.join_next().await {
        done.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), total);

    // Telegram polling moves to B within 15 s, and B answers there.
    within(
        Duration::from_secs(15),
        "Telegram polling moves to B",
        async || {
            telegram.state.lock().unwrap().offsets.len() > polls_at_kill
                && killed_at.elapsed() > Duration::from_millis(500)
        },
    )
    .await;
    println!(
        "Telegram polling moved to the survivor {:?} after the kill",
        killed_at.elapsed()
    );
    telegram.push(fake_telegram::text_update(
        2,
        43,
        8,
        fake_telegram::ann(),
        "Hoe vraag ik een paspoort aan?",
    ));
    within(
        Duration::from_secs(15),
        "the survivor answers on Telegram",
        async || telegram.sends().iter().any(|(chat, _, _)| *chat == 43),
    )
    .await;

    // The Discord gateway moves to B within 15 s of the kill, and B answers there.
    let after_kill = || {
        let state = discord.state.lock().unwrap();
        state.identified.iter().find(|at| **at > killed_at).copied()
    };
    within(
        Duration::from_secs(20),
        "the Discord gateway moves to B",
        async || after_kill().is_some(),
    )
    .await;
    let moved = after_kill().unwrap().duration_since(killed_at);
    println!("the Discord gateway moved to the survivor {moved:?} after the kill");
    assert!(moved <= Duration::from_secs(15), "{moved:?}");
    ask_discord("1002", "2003");
    within(
        Duration::from_secs(15),
        "the survivor answers on Discord",
        async || {
            discord
                .sends()
                .iter()
                .any(|(channel, ..)| channel == "2003")
        },
    )
    .await;
    assert_eq!(
        discord.state.lock().unwrap().most_live,
        1,
        "never two gateway sessions at once"
    );

    // Every acknowledged message is stored once, with the decision it was acknowledged with.
    let db = Db(Some(Mutex::new(sql(|| {
        postgres::Client::connect(url.expose(), postgres::NoTls).unwrap()
    }))));
    let gap = db.count("SELECT id FROM escalations WHERE conversation = 'gap'") as u64;
    let arrivals = || {
        notified
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == "escalation.arrived" && n["escalation"].as_u64() == Some(gap))
            .count()
    };
    within(
        Duration::from_secs(15),
        "the survivor tells the team of the complaint that came in the gap",
        async || arrivals() > 0,
    )
    .await;
    let stored: Vec<(String, String, i64)> = db.rows(
        "SELECT id, conversation, count(*) OVER (PARTITION BY id) FROM messages WHERE channel = 'http' AND id LIKE 'c%'",
        |r| (r.get(0), r.get(1), r.get(2)),
    );
    assert_eq!(
        stored.len(),
        total,
        "every acknowledged message stored once"
    );
    assert!(stored.iter().all(|(_, _, n)| *n == 1));
    let ids: BTreeSet<&String> = stored.iter().map(|(id, _, _)| id).collect();
    assert!(acked.keys().all(|id| ids.contains(id)));
    for (id, decision) in &acked {
        assert_eq!(decision["id"].as_str(), Some(id.as_str()), "{decision}");
    }

    // Every reply is sent: nothing pending after the dead instance's claims ran out, and the
    // callback got each of them, in order per conversation.
    let drained = within(Duration::from_secs(20), "the outbox drains", async || {
        db.count("SELECT count(*) FROM outbox WHERE status = 'pending'") == 0
    })
    .await;
    println!("the outbox drained {drained:?} after the load ended");
    let sent: Vec<(i64, String, String)> = db.rows(
        "SELECT id, conversation, in_reply_to FROM outbox WHERE channel = 'http' AND conversation LIKE 'c%' ORDER BY id",
        |r| (r.get(0), r.get(1), r.get(2)),
    );
    let dead = db.count("SELECT count(*) FROM outbox WHERE status = 'dead'");
    assert_eq!(dead, 0, "no reply given up");
    let got = received.lock().unwrap().clone();
    let mut first_arrival: Vec<u64> = Vec::new();
    let mut seen = BTreeSet::new();
    for (id, _, _) in &got {
        if seen.insert(*id) {
            first_arrival.push(*id);
        }
    }
    let repeats = got.len() - first_arrival.len();
    println!(
        "{} replies, {} delivered once more after the kill (the same Idempotency-Key lets a receiver drop them)",
        sent.len(),
        repeats
    );
    // Only the reply a conversation had in flight when A was killed (sent, not yet recorded)
    // goes again, once, and before anything later of that conversation: in each
    // conversation's arrivals a repeat directly follows the first, and at most one reply of
    // each conversation repeats.
    let mut by_conversation: BTreeMap<&String, Vec<u64>> = BTreeMap::new();
    for (id, conversation, _) in &got {
        by_conversation.entry(conversation).or_default().push(*id);
    }
    for (conversation, ids) in &by_conversation {
        let mut once = ids.clone();
        once.dedup();
        let repeated = ids.len() - once.len();
        assert!(
            repeated <= 1 && once.windows(2).all(|w| w[0] < w[1]),
            "{conversation}: arrivals {ids:?}"
        );
    }
    let expected: BTreeSet<u64> = sent.iter().map(|(id, _, _)| *id as u64).collect();
    let delivered: BTreeSet<u64> = first_arrival
        .iter()
        .copied()
        .filter(|id| expected.contains(id))
        .collect();
    assert_eq!(delivered, expected, "every reply reached the callback");
    // At most one per delivery in flight at the kill (the outbox's default concurrency, 32).
    assert!(repeats <= 32, "{repeats} repeated deliveries");
    // In order per conversation: by first arrival, each conversation's replies come in the
    // order of its messages (a repeat after a kill is a second arrival and does not count).
    let conversation_of: BTreeMap<u64, (&String, &String)> = sent
        .iter()
        .map(|(id, conversation, in_reply_to)| (*id as u64, (conversation, in_reply_to)))
        .collect();
    let mut last: BTreeMap<&String, (u64, usize)> = BTreeMap::new();
    for id in &first_arrival {
        let Some((conversation, in_reply_to)) = conversation_of.get(id) else {
            continue;
        };
        let m: usize = in_reply_to.rsplit('m').next().unwrap().parse().unwrap();
        if let Some((prev_id, prev_m)) = last.get(conversation) {
            assert!(
                *id > *prev_id && m >= *prev_m,
                "reply {id} ({in_reply_to}) arrived after reply {prev_id} in {conversation}"
            );
        }
        last.insert(conversation, (*id, m));
    }

    assert_eq!(arrivals(), 1, "told once");
    kill(&b.child, "-TERM");
    let _ = b.child.wait();
    let logged = b
        .logged
        .take()
        .map(|h| h.join().unwrap())
        .unwrap_or_default();
    assert!(logged.contains("now leads"), "{logged}");
    assert!(
        !logged.contains(url.expose()),
        "the database URL is never logged"
    );
}

const PASSWORD: &str = "correct horse battery staple";
const COMPLAINT: &str = "Ik heb een klacht over de afvalinzameling, al drie weken niet opgehaald!";

async fn inbox_and_web_chat_across_instances(
    client: &reqwest::Client,
    url: &webcare_engine::store::postgres::PgUrl,
    a: &str,
    b: &str,
    notified: &Notified,
) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use webcare_engine::store::{self, Backend, Role, StoreOptions, User};
    use webcare_inbox::auth::{hash_password, new_api_token, token_digest};

    let token = sql(|| {
        let store = store::open(&StoreOptions {
            backend: Backend::Postgres,
            url: Some(url.clone()),
            ..StoreOptions::default()
        })
        .unwrap();
        let now = chrono::Utc::now();
        let lea = User {
            login: "lea".into(),
            name: "Lea".into(),
            role: Role::Lead,
            teams: vec!["webcare".into()],
            password_hash: hash_password(PASSWORD).unwrap(),
            created_at: now,
        };
        store.put_user(lea, "test", now).unwrap();
        // Bo works the inbox in a browser; Lea answers through the API.
        let bo = User {
            login: "bo".into(),
            name: "Bo".into(),
            role: Role::Agent,
            teams: vec!["webcare".into()],
            password_hash: hash_password(PASSWORD).unwrap(),
            created_at: now,
        };
        store.put_user(bo, "test", now).unwrap();
        let token = new_api_token();
        store
            .add_api_token("lea", token_digest(&token), now)
            .unwrap();
        token
    });

    // Logged in on A (the login form's CSRF cookie, then the session cookie) …
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie_of = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
            .unwrap()
    };
    let form = browser
        .get(format!("{a}/inbox/login"))
        .send()
        .await
        .unwrap();
    let csrf = cookie_of(&form, "webcare_login");
    let login = browser
        .post(format!("{a}/inbox/login"))
        .header(reqwest::header::COOKIE, format!("webcare_login={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("login", "bo"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), reqwest::StatusCode::SEE_OTHER);
    let session = format!("webcare_session={}", cookie_of(&login, "webcare_session"));
    // … is logged in on B.
    let queue = browser
        .get(format!("{b}/inbox"))
        .header(reqwest::header::COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        queue.status(),
        reqwest::StatusCode::OK,
        "the session holds on B"
    );

    // B's live updates, as the open inbox page reads them.
    let mut events = browser
        .get(format!("{b}/inbox/events"))
        .header(reqwest::header::COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), reqwest::StatusCode::OK);
    let changed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let heard = Arc::clone(&changed);
    let reader = tokio::spawn(async move {
        while let Ok(Some(chunk)) = events.chunk().await {
            if String::from_utf8_lossy(&chunk).contains("event: changed") {
                heard.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });

    // A visitor on B's web chat writes a complaint: escalated, with a holding reply.
    let ws = format!("{}/webchat/ws", b.replacen("http://", "ws://", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws).await.unwrap();
    let mut conversation = String::new();
    let mut frames = Vec::new();
    let next = async |socket: &mut tokio_tungstenite::WebSocketStream<_>| -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .expect("a frame in time")
                .unwrap()
                .unwrap();
            if let Message::Text(text) = frame {
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    };
    while conversation.is_empty() {
        let frame = next(&mut socket).await;
        if frame["type"] == "hello" {
            conversation = frame["conversation"].as_str().unwrap().to_owned();
        }
    }
    socket
        .send(Message::text(
            json!({"type": "message", "id": "v1", "text": COMPLAINT}).to_string(),
        ))
        .await
        .unwrap();
    while !frames.iter().any(|f: &Value| f["type"] == "reply") {
        frames.push(next(&mut socket).await);
    }

    // The lead answers through A's API; the visitor on B reads it.
    let list: Value = client
        .get(format!("{a}/api/v1/escalations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let escalation = list["escalations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["conversation"] == conversation.as_str())
        .unwrap_or_else(|| panic!("no escalation for {conversation}: {list}"))["id"]
        .as_u64()
        .unwrap();
    let before = changed.load(std::sync::atomic::Ordering::SeqCst);
    let replying = Instant::now();
    let answer = "Hallo, ik ben Lea van het webcareteam. Ik zoek het voor u uit.";
    let replied = client
        .post(format!("{a}/api/v1/escalations/{escalation}/reply"))
        .bearer_auth(&token)
        .json(&json!({ "text": answer }))
        .send()
        .await
        .unwrap();
    assert!(replied.status().is_success(), "{}", replied.status());
    loop {
        let frame = next(&mut socket).await;
        if frame["type"] == "reply" && frame["text"] == answer {
            assert_eq!(frame["from"], "agent");
            break;
        }
    }

    // The visitor writes again after the answer: the team hears of the arrival and of the
    // follow-up once each, from the leader's timer, whichever instance took the messages in.
    socket
        .send(Message::text(
            json!({"type": "message", "id": "v2", "text": "Dank, maar wanneer komt de wagen?"})
                .to_string(),
        ))
        .await
        .unwrap();
    let told = async |kind: &str| {
        notified
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == kind && n["escalation"].as_u64() == Some(escalation))
            .count()
    };
    within(
        Duration::from_secs(10),
        "the team hears of the follow-up",
        async || told("escalation.follow_up").await > 0,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(told("escalation.arrived").await, 1);
    assert_eq!(told("escalation.follow_up").await, 1);
    println!(
        "an agent's reply through one instance reached the visitor on the other in {:?}",
        replying.elapsed()
    );
    within(
        Duration::from_secs(1),
        "B's inbox page hears of A's reply",
        async || changed.load(std::sync::atomic::Ordering::SeqCst) > before,
    )
    .await;
    reader.abort();

    // Bo's reply, posted to A, is refused (Lea's reply claimed the escalation); the browser
    // is sent back to the escalation page, and B, where that lands, shows why and Bo's text.
    let path = format!("/inbox/escalations/{escalation}");
    let page = browser
        .get(format!("{a}{path}"))
        .header(reqwest::header::COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf\" value=\"";
    let csrf = page[page.find(marker).unwrap() + marker.len()..]
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let text = "Goedemiddag, de wagen komt morgenochtend langs.";
    let refused = browser
        .post(format!("{a}{path}/reply"))
        .header(reqwest::header::COOKIE, &session)
        .form(&[("csrf", csrf.as_str()), ("text", text)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(refused.headers()[reqwest::header::LOCATION], path.as_str());
    let shown = browser
        .get(format!("{b}{path}"))
        .header(reqwest::header::COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refusal = shown
        .split("id=\"reply-refused\"")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no refusal on B: {shown}"));
    assert!(refusal.contains("already claimed by lea"), "{refusal}");
    assert!(shown.contains(&format!(">{text}</textarea>")), "{shown}");
    // In the database for ten minutes at most: it holds the agent's unsent words.
    let left = sql(|| {
        let mut db = postgres::Client::connect(url.expose(), postgres::NoTls).unwrap();
        db.query_one(
            "SELECT extract(epoch FROM max(expires_at) - now())::float8 FROM inbox_kept",
            &[],
        )
        .unwrap()
        .get::<_, f64>(0)
    });
    assert!(left > 0.0 && left <= 600.0, "{left}");
}

/// Runs a call of the sync PostgreSQL client (which blocks on a runtime of its own) from this
/// test's async body.
fn sql<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The test's own connection to the shared database, used and closed off the runtime's threads.
struct Db(Option<Mutex<postgres::Client>>);

impl Db {
    fn rows<T>(&self, query: &str, row: impl Fn(&postgres::Row) -> T) -> Vec<T> {
        let client = self.0.as_ref().unwrap();
        sql(|| {
            let mut client = client.lock().unwrap();
            client.query(query, &[]).unwrap().iter().map(row).collect()
        })
    }

    fn count(&self, query: &str) -> i64 {
        self.rows(query, |r| r.get::<_, i64>(0))[0]
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let client = self.0.take();
        sql(move || drop(client));
    }
}

const TEXTS: [&str; 4] = [
    "Hoe vraag ik een paspoort aan?",
    "Wanneer wordt het afval opgehaald?",
    "Wat zijn de openingstijden van het stadhuis?",
    "Bedankt voor de snelle hulp!",
];

/// Issue 15: `/healthz` is unhealthy (503, with the reason) while intake cannot write because
/// PostgreSQL is down, and healthy again by itself once it is back, before any message comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_unhealthy_while_postgres_is_down_and_recovers_by_itself() {
    let (cluster, url) = sql(|| {
        let cluster = pg::Cluster::start();
        let url = cluster.new_database();
        (cluster, url)
    });
    let telegram = fake_telegram::serve(None).await;
    let (callback, _received, _notified) = callback_receiver(QUICK).await;
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &callback);
    let instance = start(dir.path(), url.expose(), &telegram.url, None).await;
    let client = reqwest::Client::new();
    let health = async || {
        let response = client
            .get(format!("{}/healthz", instance.base))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let post = async |id: &str| {
        client
            .post(format!("{}/api/v1/messages", instance.base))
            .timeout(Duration::from_secs(20))
            .json(&json!({"id": id, "text": TEXTS[0]}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(health().await, (200, "ok\n".to_owned()));
    assert_eq!(post("before").await, 200);

    sql(|| cluster.stop_server());
    assert_eq!(post("while-down").await, 503);
    let (status, body) = health().await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("unhealthy: intake cannot write to the store since ")
            && body.contains("cannot be reached"),
        "{body}"
    );

    sql(|| cluster.start_server());
    within(
        Duration::from_secs(15),
        "healthy again once PostgreSQL is back",
        async || health().await.0 == 200,
    )
    .await;
    assert_eq!(post("after").await, 200);
}

/// A graceful stop (SIGTERM) while replies are in flight to a slow receiver never sends a reply
/// twice: the worker starts no new send and waits for each one in flight to be recorded, and
/// the next start sends the rest. Every reply arrives exactly once, in order per conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_never_sends_a_reply_twice() {
    let (_cluster, url) = sql(|| {
        let cluster = pg::Cluster::start();
        let url = cluster.new_database();
        (cluster, url)
    });
    let telegram = fake_telegram::serve(None).await;
    // Slower than a send's timeout would allow for more than one round, so a stop always finds
    // replies in flight.
    let (callback, received, _notified) = callback_receiver(Duration::from_millis(400)).await;
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &callback);
    let instance = start(dir.path(), url.expose(), &telegram.url, None).await;
    let client = reqwest::Client::new();
    let bases = [instance.base.clone(), instance.base.clone()];
    let (conversations, each) = (12, 3);
    for m in 0..each {
        for c in 0..conversations {
            let body = json!({"id": format!("s{c}-m{m}"), "conversation": format!("s{c}"), "text": TEXTS[0]});
            deliver(&client, &bases, 0, &body).await;
        }
    }
    within(
        Duration::from_secs(20),
        "the first replies arrive",
        async || !received.lock().unwrap().is_empty(),
    )
    .await;
    kill(&instance.child, "-TERM");
    let mut instance = instance;
    let status = instance.child.wait().unwrap();
    assert!(status.success(), "a graceful stop ends well: {status}");
    let at_stop = received.lock().unwrap().len();
    assert!(
        at_stop < conversations * each,
        "stopped with replies left to send"
    );

    let _again = start(dir.path(), url.expose(), &telegram.url, None).await;
    within(
        Duration::from_secs(60),
        "the next start sends the rest",
        async || received.lock().unwrap().len() >= conversations * each,
    )
    .await;
    // Time for a repeat to show, had there been one.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = received.lock().unwrap().clone();
    let ids: BTreeSet<u64> = got.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(
        ids.len(),
        got.len(),
        "every reply exactly once ({at_stop} had arrived at the stop): {got:?}"
    );
    assert_eq!(got.len(), conversations * each);
    let mut last: BTreeMap<&String, &String> = BTreeMap::new();
    for (_, conversation, in_reply_to) in &got {
        if let Some(previous) = last.insert(conversation, in_reply_to) {
            assert!(
                previous < in_reply_to,
                "{conversation}: {previous} then {in_reply_to}"
            );
        }
    }
}
