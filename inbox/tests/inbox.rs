//! The inbox end to end, in process, on a virtual clock: the HTTP channel, the outbox worker,
//! the SLA timer and the inbox share one `ManualClock`, so "a complaint on Friday at 17:55
//! breaches on Monday" runs in well under a second. Also: access (401, 403, the login rate
//! limit), CSRF, escaping, and the queue page with 10,000 open escalations.

// A failed unwrap is a failed test, with its line.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use webcare_adapters::gateway::Gateway;
use webcare_adapters::http::{self, Callback, CallbackDeliver, HttpChannelConfig, SigningKey};
use webcare_adapters::outbox::{OutboxConfig, OutboxWorker};
use webcare_engine::store::{self, EscalationStatus, Role, User};
use webcare_engine::{ChannelKind, ManualClock, Priority, Rulebook, Runtime};
use webcare_inbox::auth::{hash_password, new_api_token, token_digest};
use webcare_inbox::notify::{Notifier, NotifyConfig, TeamChannels, Webhook};
use webcare_inbox::sla::SlaTimer;
use webcare_inbox::{Inbox, InboxConfig};

mod support;
use support::{hidden, local, serve, set_cookie};

const COMPLAINT: &str = "Ik heb een klacht over de afvalinzameling, al drie weken niet opgehaald!";

/// An SLA timer polling every 20 ms until its sender says stop.
fn start_timer(inbox: &Inbox) -> watch::Sender<bool> {
    let (stop, stopped) = watch::channel(false);
    let stop_timer = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    };
    tokio::spawn(SlaTimer::new(inbox.clone(), Duration::from_millis(20)).run(stop_timer));
    stop
}

#[derive(Default)]
struct Received {
    callbacks: Vec<Callback>,
    bad_signatures: usize,
}

async fn receive(
    State((key, received)): State<(SigningKey, Arc<Mutex<Received>>)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let signed = headers
        .get(http::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sig| key.verify(&body, sig));
    let mut received = received.lock().unwrap();
    if !signed {
        received.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    received
        .callbacks
        .push(serde_json::from_slice(&body).unwrap());
    StatusCode::OK
}

/// One service like `webcare run` composes it, on a manual clock.
struct Service {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    gateway: Gateway,
    inbox: Inbox,
    base: String,
    received: Arc<Mutex<Received>>,
    client: reqwest::Client,
    _stop: watch::Sender<bool>,
    /// Stops the SLA timer alone (a leader that died), see [`Service::stop_timer`].
    timer: Mutex<watch::Sender<bool>>,
}

impl Service {
    async fn start(start: DateTime<Utc>) -> Service {
        Service::with_notifications(start, None).await
    }

    async fn with_notifications(start: DateTime<Utc>, notify: Option<NotifyConfig>) -> Service {
        let (dir, gateway, clock) = support::gateway(start);
        let (stop, stopped) = watch::channel(false);
        let shutdown = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };

        let key = SigningKey::new("callback-secret");
        let received = Arc::new(Mutex::new(Received::default()));
        let callback_app = Router::new()
            .route("/callback", axum::routing::post(receive))
            .with_state((key.clone(), Arc::clone(&received)));
        let callback = format!("{}/callback", serve(callback_app).await);

        let config = HttpChannelConfig {
            callback_url: Some(callback.clone()),
            secret: Some(key.clone()),
            ..HttpChannelConfig::default()
        };
        let mut worker = OutboxWorker::new(
            gateway.clone(),
            OutboxConfig {
                poll: Duration::from_millis(50),
                ..OutboxConfig::default()
            },
        );
        worker.register(
            ChannelKind::Http,
            Arc::new(CallbackDeliver::new(&callback, Some(key), Duration::from_secs(5)).unwrap()),
        );
        tokio::spawn(worker.run(shutdown()));

        let notifier = notify.map(|config| {
            let (notifier, worker) = Notifier::new(config, None, None).unwrap();
            tokio::spawn(worker.run(shutdown()));
            notifier
        });
        let inbox = Inbox::new(gateway.clone(), InboxConfig::default(), notifier);
        let timer = start_timer(&inbox);
        let app = http::routes(gateway.clone(), config)
            .unwrap()
            .merge(inbox.routes());
        let base = serve(app).await;
        Service {
            _dir: dir,
            clock,
            gateway,
            inbox,
            base,
            received,
            client: reqwest::Client::new(),
            _stop: stop,
            timer: Mutex::new(timer),
        }
    }

    /// Stops the SLA timer, as when the instance that ran it dies.
    fn stop_timer(&self) {
        self.timer.lock().unwrap().send_replace(true);
    }

    /// A new SLA timer, as on the instance that takes over.
    fn restart_timer(&self) {
        *self.timer.lock().unwrap() = start_timer(&self.inbox);
    }

    /// Adds a user with `password` and returns a fresh API token of theirs.
    async fn user(&self, login: &str, role: Role, teams: &[&str], password: &str) -> String {
        let user = User {
            login: login.into(),
            name: login.to_uppercase(),
            role,
            teams: teams.iter().map(|t| (*t).to_owned()).collect(),
            password_hash: hash_password(password).unwrap(),
            created_at: self.clock_now(),
        };
        let token = new_api_token();
        let digest = token_digest(&token);
        let now = self.clock_now();
        self.gateway
            .store(move |s| {
                let login = user.login.clone();
                s.put_user(user, "test", now)?;
                s.add_api_token(&login, digest, now)
            })
            .await
            .unwrap();
        token
    }

    fn clock_now(&self) -> DateTime<Utc> {
        self.gateway.now()
    }

    async fn post_message(&self, id: &str, text: &str) -> serde_json::Value {
        self.post_in("c1", id, text).await
    }

    async fn post_in(&self, conversation: &str, id: &str, text: &str) -> serde_json::Value {
        let response = self
            .client
            .post(format!("{}/api/v1/messages", self.base))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"id": id, "conversation": conversation, "author": "citizen", "text": text})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let url = format!("{}/api/v1/escalations{path}", self.base);
        let mut request = match method {
            "GET" => self.client.get(url),
            _ => self.client.post(url),
        };
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    async fn wait_for<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(found) = check() {
                return found;
            }
            assert!(Instant::now() < deadline, "waited too long for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friday_evening_complaint_breaches_on_monday_climbs_the_chain_and_a_human_answers() {
    let friday = local(2026, 11, 27, 17, 55);
    let s = Service::start(friday).await;
    let anna = s.user("anna", Role::Agent, &["webcare"], "anna-pw").await;
    let dana = s
        .user("dana", Role::Agent, &["webcare_leads"], "dana-pw")
        .await;

    // Friday 17:55: the complaint escalates with the out-of-hours holding reply.
    let decision = s.post_message("m1", COMPLAINT).await;
    assert_eq!(decision["action"], "escalate", "{decision}");
    assert_eq!(decision["team"], "webcare");
    let holding = decision["reply"].as_str().unwrap();
    assert!(holding.contains("maandag vanaf 08:30"), "{holding}");
    let priority: Priority = decision["priority"].as_str().unwrap().parse().unwrap();
    let holding_sent = s
        .wait_for("the holding reply at the callback", || {
            s.received.lock().unwrap().callbacks.first().cloned()
        })
        .await;
    assert_eq!(holding_sent.text, holding);
    assert_eq!(holding_sent.in_reply_to, "m1");

    // It is in the webcare team's queue, with its deadline in Monday's office time.
    let (status, list) = s.api("GET", "?team=webcare", Some(&anna), None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["count"], 1);
    let id = list["escalations"][0]["id"].as_u64().unwrap();
    let rulebook = Rulebook::embedded().unwrap();
    let teams = rulebook.teams();
    let minutes = i64::from(teams.get("webcare").unwrap().sla_minutes(priority));
    let due = local(2026, 11, 30, 8, 30) + chrono::Duration::minutes(minutes);
    let deadline: DateTime<Utc> = list["escalations"][0]["sla_deadline"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        deadline, due,
        "the SLA counts office minutes from Monday 08:30"
    );

    // All weekend and until a minute before the deadline nothing happens.
    s.clock.set(due - chrono::Duration::minutes(1));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let esc = s
        .gateway
        .store(move |st| st.escalation(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((esc.team.as_str(), esc.priority), ("webcare", priority));

    // Monday, past the deadline: it climbs the chain to the team lead, one priority up.
    s.clock.set(due + chrono::Duration::minutes(1));
    let gateway = s.gateway.clone();
    let esc = s
        .wait_for("the breach", || {
            let esc = futures_executor(&gateway, id);
            (esc.team == "webcare_leads").then_some(esc)
        })
        .await;
    assert_eq!(esc.priority, webcare_inbox::sla::raise(priority));
    assert!(esc.priority > priority);
    let leads = teams.get("webcare_leads").unwrap();
    let expected_next = leads
        .sla_deadline(
            teams.local(due + chrono::Duration::minutes(1)),
            esc.priority,
        )
        .map(|d| d.with_timezone(&Utc));
    assert_eq!(esc.sla_deadline, expected_next);
    assert!(
        esc.history
            .iter()
            .any(|h| h.change.starts_with("SLA breached"))
    );
    let work = s
        .gateway
        .store(move |st| st.escalation_work(id))
        .await
        .unwrap();
    assert_eq!(work.breaches.len(), 1);
    let audit = s
        .gateway
        .store(|st| st.audit_log(None, 1000))
        .await
        .unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == "escalation.breach")
            .count(),
        1
    );
    // A restarted timer offers the same breach again: handled once.
    let again = SlaTimer::new(s.inbox.clone(), Duration::from_millis(20))
        .tick()
        .await
        .unwrap();
    assert!(again.is_empty());

    // The webcare agent no longer works it; the lead's team does.
    let (status, _) = s.api("GET", &format!("/{id}"), Some(&anna), None).await;
    assert_eq!(status, 403);
    let (status, body) = s
        .api(
            "POST",
            &format!("/{id}/reply"),
            Some(&dana),
            Some(serde_json::json!({"text": "Sorry for the wait! The collection is planned for tomorrow."})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "claimed");
    assert!(
        body["sla_deadline"].is_null(),
        "the first response meets the SLA"
    );

    // The reply reaches the HTTP channel's callback, signed.
    let reply = s
        .wait_for("the agent reply at the callback", || {
            s.received.lock().unwrap().callbacks.get(1).cloned()
        })
        .await;
    assert_eq!(
        reply.text,
        "Sorry for the wait! The collection is planned for tomorrow."
    );
    assert_eq!(
        (reply.conversation.as_str(), reply.in_reply_to.as_str()),
        ("c1", "m1")
    );

    // The customer writes again during the handoff: no bot answer, the same escalation.
    let second = s
        .post_message("m2", "Nog steeds niks opgehaald, dit is echt een klacht")
        .await;
    assert!(second["reply"].is_null(), "the bot stays silent: {second}");
    let esc = s
        .gateway
        .store(move |st| st.escalation(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(esc.messages, vec!["m1".to_owned(), "m2".to_owned()]);
    assert_eq!(esc.status, EscalationStatus::Claimed { by: "dana".into() });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let received = s.received.lock().unwrap();
    assert_eq!(
        received.callbacks.len(),
        2,
        "no holding reply for the second message"
    );
    assert_eq!(received.bad_signatures, 0);
}

/// The escalation, read on a blocking thread (for the polling closures above).
fn futures_executor(gateway: &Gateway, id: u64) -> webcare_engine::store::Escalation {
    let store = Arc::clone(gateway.runtime().store());
    std::thread::spawn(move || store.escalation(id).unwrap().unwrap())
        .join()
        .unwrap()
}

/// A browser-like session: the cookie and the CSRF token of the pages.
struct Browser {
    cookie: String,
}

impl Service {
    /// Logs in through the form; returns the status and, on success, the session.
    async fn login(&self, login: &str, password: &str) -> (u16, Option<Browser>, HeaderMap) {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let form = client
            .get(format!("{}/inbox/login", self.base))
            .send()
            .await
            .unwrap();
        let login_cookie = set_cookie(form.headers(), "webcare_login").unwrap();
        let page = form.text().await.unwrap();
        let csrf = hidden(&page, "csrf");
        let response = client
            .post(format!("{}/inbox/login", self.base))
            .header("cookie", format!("webcare_login={login_cookie}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("login", login),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let session = set_cookie(&headers, "webcare_session").map(|cookie| Browser { cookie });
        (status, session.filter(|_| status == 303), headers)
    }

    async fn page(&self, browser: Option<&Browser>, path: &str) -> (u16, String) {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut request = client.get(format!("{}{path}", self.base));
        if let Some(b) = browser {
            request = request.header("cookie", format!("webcare_session={}", b.cookie));
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn form(&self, browser: &Browser, path: &str, fields: &[(&str, &str)]) -> u16 {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        client
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("webcare_session={}", browser.cookie))
            .form(fields)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_work_only_their_teams_logins_are_rate_limited_and_customer_text_stays_text() {
    let monday = local(2026, 11, 30, 10, 0);
    let s = Service::start(monday).await;
    let anna = s.user("anna", Role::Agent, &["webcare"], "anna-pw").await;
    let lex = s.user("lex", Role::Agent, &["legal"], "lex-pw").await;
    let script = "<script>window.__pwned = 1</script> klacht: de afvalinzameling is niet geweest";
    let decision = s.post_message("x1", script).await;
    assert_eq!(decision["team"], "webcare", "{decision}");
    let (_, list) = s.api("GET", "", Some(&anna), None).await;
    let id = list["escalations"][0]["id"].as_u64().unwrap();

    // The API: no or a wrong token is 401, another team's escalation 403.
    for token in [None, Some("wct_not-a-token")] {
        let (status, body) = s.api("GET", "", token, None).await;
        assert_eq!(status, 401, "{body}");
        assert!(body["error"].as_str().unwrap().contains("API token"));
        let (status, _) = s.api("POST", &format!("/{id}/claim"), token, None).await;
        assert_eq!(status, 401);
    }
    let (status, _) = s.api("GET", &format!("/{id}"), Some(&lex), None).await;
    assert_eq!(status, 403);
    for action in ["claim", "resolve", "handback"] {
        let (status, _) = s
            .api("POST", &format!("/{id}/{action}"), Some(&lex), None)
            .await;
        assert_eq!(status, 403, "{action}");
    }
    let (status, _) = s
        .api(
            "POST",
            &format!("/{id}/reply"),
            Some(&lex),
            Some(serde_json::json!({"text": "hi"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = s.api("GET", "?team=webcare", Some(&lex), None).await;
    assert_eq!(status, 403);
    let (_, list) = s.api("GET", "", Some(&lex), None).await;
    assert_eq!(list["count"], 0, "lex sees no webcare escalations");
    let (status, one) = s.api("GET", &format!("/{id}"), Some(&anna), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        one["conversation_messages"][0]["text"], script,
        "JSON keeps the text as is"
    );
    assert!(
        one["diagnostics"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("escalation.rhai:"))
    );

    // The pages: without a session, to the login page.
    let (status, _) = s.page(None, "/inbox").await;
    assert_eq!(status, 303);
    let (status, _) = s.page(None, &format!("/inbox/escalations/{id}")).await;
    assert_eq!(status, 303);

    // lex logs in, and is refused anna's team's escalation, to read or to act.
    let (status, browser, _) = s.login("lex", "lex-pw").await;
    assert_eq!(status, 303);
    let lex_browser = browser.unwrap();
    let (status, page) = s.page(Some(&lex_browser), "/inbox").await;
    assert_eq!(status, 200);
    assert!(!page.contains(&format!("esc-{id}")), "not in lex's queue");
    let (status, _) = s
        .page(Some(&lex_browser), &format!("/inbox/escalations/{id}"))
        .await;
    assert_eq!(status, 403);
    let csrf = hidden(&page, "csrf");
    let status = s
        .form(
            &lex_browser,
            &format!("/inbox/escalations/{id}/claim"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 403);

    // anna logs in; her pages show the customer's markup as text.
    let (_, browser, _) = s.login("anna", "anna-pw").await;
    let anna_browser = browser.unwrap();
    let (status, page) = s
        .page(Some(&anna_browser), &format!("/inbox/escalations/{id}"))
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("&lt;script&gt;window.__pwned = 1&lt;/script&gt;"));
    assert!(!page.contains("<script>window"));
    assert!(
        page.contains("escalation.rhai:"),
        "the rule that escalated it"
    );
    // A form without the session's CSRF token does nothing.
    let status = s
        .form(
            &anna_browser,
            &format!("/inbox/escalations/{id}/claim"),
            &[("csrf", "forged")],
        )
        .await;
    assert_eq!(status, 403);
    let csrf = hidden(&page, "csrf");
    let status = s
        .form(
            &anna_browser,
            &format!("/inbox/escalations/{id}/claim"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 303);
    let esc = s
        .gateway
        .store(move |st| st.escalation(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(esc.status, EscalationStatus::Claimed { by: "anna".into() });

    // Wrong passwords: five are answered, the sixth waits (per login and per address).
    for _ in 0..5 {
        let (status, _, _) = s.login("anna", "guess").await;
        assert_eq!(status, 401);
    }
    let (status, _, headers) = s.login("anna", "anna-pw").await;
    assert_eq!(status, 429, "even the right password waits");
    let wait: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= 15 * 60, "{wait}");
    let (status, _, _) = s.login("dana", "whatever").await;
    assert_eq!(status, 429, "the same address is limited too");
    s.clock.advance(chrono::Duration::minutes(16));
    let (status, browser, _) = s.login("anna", "anna-pw").await;
    assert_eq!(status, 303);
    assert!(browser.is_some());

    // The audit log has the logins and the claim, never the customer's words.
    let audit = s
        .gateway
        .store(|st| st.audit_log(None, 1000))
        .await
        .unwrap();
    for action in ["inbox.login", "inbox.login_failed", "escalation.claim"] {
        assert!(audit.iter().any(|a| a.action == action), "{action}");
    }
    assert!(
        audit
            .iter()
            .all(|a| !a.details.contains("pwned") && !a.subject.contains("pwned"))
    );
}

async fn hook(
    State((key, received)): State<(SigningKey, Arc<Mutex<Vec<serde_json::Value>>>)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let signed = headers
        .get(http::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sig| key.verify(&body, sig));
    if !signed {
        return StatusCode::UNAUTHORIZED;
    }
    received
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap());
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_hear_of_arrivals_and_breaches_by_signed_webhook_without_customer_text() {
    let key = SigningKey::new("hook-secret");
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state((key.clone(), Arc::clone(&received)));
    let url = format!("{}/hook", serve(app).await);
    let mut config = NotifyConfig {
        base_url: Some("https://webcare.example.org".into()),
        ..NotifyConfig::default()
    };
    for team in ["webcare", "webcare_leads"] {
        config.teams.insert(
            team.into(),
            TeamChannels {
                webhook: Some(Webhook {
                    url: url.clone(),
                    secret: Some(key.clone()),
                }),
                ..TeamChannels::default()
            },
        );
    }
    let monday = local(2026, 11, 30, 10, 0);
    let s = Service::with_notifications(monday, Some(config)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.post_message("n1", COMPLAINT).await;
    let arrived = s
        .wait_for("the arrival", || received.lock().unwrap().first().cloned())
        .await;
    assert_eq!(arrived["type"], "escalation.arrived");
    assert_eq!(arrived["team"], "webcare");
    assert_eq!(arrived["category"], "complaint");
    let line = arrived["text"].as_str().unwrap();
    assert!(
        line.contains("category complaint") && line.contains("priority"),
        "{line}"
    );
    let id = arrived["escalation"].as_u64().unwrap();
    assert_eq!(
        arrived["url"],
        format!("https://webcare.example.org/inbox/escalations/{id}")
    );

    let esc = s
        .gateway
        .store(move |st| st.escalation(id))
        .await
        .unwrap()
        .unwrap();
    s.clock
        .set(esc.sla_deadline.unwrap() + chrono::Duration::minutes(1));
    let breached = s
        .wait_for("the breach", || received.lock().unwrap().get(1).cloned())
        .await;
    assert_eq!(breached["type"], "escalation.breached");
    assert_eq!(breached["team"], "webcare_leads");
    for note in received.lock().unwrap().iter() {
        let text = note.to_string();
        assert!(
            !text.contains("afvalinzameling"),
            "no customer text: {text}"
        );
    }
}

/// What the fake webhook received so far, by type.
fn heard_types(received: &Mutex<Vec<serde_json::Value>>) -> Vec<String> {
    received
        .lock()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_hear_once_of_each_follow_up_and_reopening_and_a_new_timer_catches_up() {
    let key = SigningKey::new("hook-secret");
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state((key.clone(), Arc::clone(&received)));
    let url = format!("{}/hook", serve(app).await);
    let mut config = NotifyConfig::default();
    config.teams.insert(
        "webcare".into(),
        TeamChannels {
            webhook: Some(Webhook {
                url,
                secret: Some(key),
            }),
            ..TeamChannels::default()
        },
    );
    let monday = local(2026, 11, 30, 10, 0);
    let s = Service::with_notifications(monday, Some(config)).await;
    let heard = |n: usize| {
        let received = Arc::clone(&received);
        move || {
            let types = heard_types(&received);
            (types.len() >= n).then_some(types)
        }
    };
    let reply = |id: u64| {
        let now = s.clock_now();
        s.gateway
            .store(move |st| st.reply_to_escalation(id, "anna", "We kijken ernaar.", now))
    };

    s.post_message("f1", COMPLAINT).await;
    let types = s.wait_for("the arrival", heard(1)).await;
    assert_eq!(types, ["escalation.arrived"]);
    let id = received.lock().unwrap()[0]["escalation"].as_u64().unwrap();

    // Answered, the customer writes again: the team hears it waits on them again; a second
    // message before anyone answers is the same wait and tells nothing new.
    reply(id).await.unwrap();
    s.post_message(
        "f2",
        "Het is nog steeds niet opgehaald, wanneer komen jullie?",
    )
    .await;
    let types = s.wait_for("the follow-up", heard(2)).await;
    assert_eq!(types, ["escalation.arrived", "escalation.follow_up"]);
    let follow_up = received.lock().unwrap()[1].clone();
    assert_eq!(follow_up["escalation"].as_u64(), Some(id));
    assert_eq!(follow_up["team"], "webcare");
    assert_eq!(follow_up["category"], "complaint", "the opening message's");
    assert!(
        follow_up["text"].as_str().unwrap().starts_with(&format!(
            "webcare: customer wrote again on escalation #{id} "
        )),
        "{follow_up}"
    );
    s.post_message("f3", "Hallo? Nog steeds niets gehoord.")
        .await;

    // Answered and resolved, the customer writes once more: it reopens, and the team hears.
    reply(id).await.unwrap();
    let now = s.clock_now();
    s.gateway
        .store(move |st| st.resolve_escalation(id, "anna", now))
        .await
        .unwrap();
    s.post_message("f4", COMPLAINT).await;
    let types = s.wait_for("the reopening", heard(3)).await;
    assert_eq!(
        types,
        [
            "escalation.arrived",
            "escalation.follow_up",
            "escalation.reopened"
        ],
        "one notification per follow-up and reopening"
    );

    // The timer stops (its instance died) while a follow-up and a new escalation come in;
    // the next timer tells both, once, and nothing it was told before.
    s.stop_timer();
    reply(id).await.unwrap();
    s.post_message("f5", "Dank, maar het ligt er nog.").await;
    s.post_in("c2", "g1", COMPLAINT).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        heard_types(&received).len(),
        3,
        "nobody tells while no timer runs"
    );
    // Its deadline passes in the gap too: the next timer applies the breach all the same.
    let g1 = s
        .gateway
        .store(|st| st.conversation_escalations(ChannelKind::Http, "c2"))
        .await
        .unwrap()[0]
        .clone();
    s.clock
        .set(g1.sla_deadline.unwrap() + chrono::Duration::minutes(1));
    s.restart_timer();
    let mut types = s.wait_for("the catch-up", heard(5)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(types.len(), 5, "{types:?}");
    types.sort();
    assert_eq!(
        types,
        [
            "escalation.arrived",
            "escalation.arrived",
            "escalation.follow_up",
            "escalation.follow_up",
            "escalation.reopened"
        ]
    );
    let all = received.lock().unwrap().clone();
    assert!(
        all[3..]
            .iter()
            .any(|n| n["escalation"].as_u64() == Some(g1.id))
    );
    let moved = s
        .wait_for("the breach in the gap", || {
            let esc = futures_executor(&s.gateway, g1.id);
            (esc.team != "webcare").then_some(esc)
        })
        .await;
    assert_eq!(moved.team, "webcare_leads");
    for note in &all {
        let text = note.to_string();
        for words in ["afvalinzameling", "opgehaald", "Dank"] {
            assert!(!text.contains(words), "no customer text: {text}");
        }
    }
}

/// The service's crisis switch as the inbox sees it: records who turned it, and turns the
/// runtime's switch as `webcare run`'s admin API does.
struct RecordingSwitch {
    runtime: Arc<Runtime>,
    calls: Mutex<Vec<(Option<bool>, String)>>,
}

impl webcare_inbox::CrisisSwitch for RecordingSwitch {
    fn set<'a>(
        &'a self,
        on: Option<bool>,
        actor: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            self.runtime.set_crisis_override(on);
            self.calls.lock().unwrap().push((on, actor.to_owned()));
            self.runtime.crisis_mode()
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_lead_switches_crisis_mode_and_the_escalation_page_explains_each_decision() {
    let monday = local(2026, 11, 30, 10, 0);
    let s = Service::start(monday).await;
    let anna_token = s.user("anna", Role::Agent, &["webcare"], "anna-pw").await;
    let lex_token = s.user("lex", Role::Agent, &["legal"], "lex-pw").await;
    s.user("lena", Role::Lead, &[], "lena-pw").await;
    let (_, anna, _) = s.login("anna", "anna-pw").await;
    let anna = anna.unwrap();
    let (_, lena, _) = s.login("lena", "lena-pw").await;
    let lena = lena.unwrap();
    let (_, lena_queue) = s.page(Some(&lena), "/inbox").await;
    let lena_csrf = hidden(&lena_queue, "csrf");
    assert!(
        lena_queue.contains("href=\"/inbox/crisis\""),
        "leads get the link"
    );

    // Not connected yet (a bare inbox): the page shows the state, the switch refuses.
    let (status, page) = s.page(Some(&lena), "/inbox/crisis").await;
    assert_eq!(status, 200);
    assert!(page.contains("not connected"), "{page}");
    let status = s
        .form(
            &lena,
            "/inbox/crisis",
            &[("csrf", &lena_csrf), ("switch", "on")],
        )
        .await;
    assert_eq!(status, 503);

    let switch = Arc::new(RecordingSwitch {
        runtime: Arc::clone(s.gateway.runtime()),
        calls: Mutex::new(Vec::new()),
    });
    let _ = s.inbox.clone().with_crisis_switch(switch.clone());

    // An agent neither sees nor turns the switch; a forged form does nothing.
    let (_, anna_queue) = s.page(Some(&anna), "/inbox").await;
    assert!(!anna_queue.contains("href=\"/inbox/crisis\""));
    assert!(!anna_queue.contains("crisis-banner"));
    let (status, page) = s.page(Some(&anna), "/inbox/crisis").await;
    assert_eq!(status, 403);
    assert!(
        page.contains("Only a lead may switch crisis mode."),
        "{page}"
    );
    let anna_csrf = hidden(&anna_queue, "csrf");
    let status = s
        .form(
            &anna,
            "/inbox/crisis",
            &[("csrf", &anna_csrf), ("switch", "on")],
        )
        .await;
    assert_eq!(status, 403);
    let status = s
        .form(
            &lena,
            "/inbox/crisis",
            &[("csrf", "forged"), ("switch", "on")],
        )
        .await;
    assert_eq!(status, 403);
    assert!(switch.calls.lock().unwrap().is_empty());
    let question = "Wat zijn de openingstijden van het stadskantoor?";
    assert_eq!(s.post_message("q1", question).await["action"], "answer");

    // The lead switches it on: the engine escalates what it would have answered.
    let (status, page) = s.page(Some(&lena), "/inbox/crisis").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Crisis mode is <strong>off</strong>"),
        "{page}"
    );
    let status = s
        .form(
            &lena,
            "/inbox/crisis",
            &[("csrf", &lena_csrf), ("switch", "on")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        *switch.calls.lock().unwrap(),
        [(Some(true), "lena".to_owned())]
    );
    let (_, page) = s.page(Some(&lena), "/inbox/crisis").await;
    assert!(
        page.contains("Crisis mode is <strong>on</strong> (switched on)"),
        "{page}"
    );
    let during = s.post_message("q2", question).await;
    assert_eq!(during["action"], "escalate", "{during}");
    let (_, anna_queue) = s.page(Some(&anna), "/inbox").await;
    assert!(
        anna_queue.contains("id=\"crisis-banner\""),
        "everyone sees it"
    );
    let status = s
        .form(
            &lena,
            "/inbox/crisis",
            &[("csrf", &lena_csrf), ("switch", "auto")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(switch.calls.lock().unwrap()[1], (None, "lena".to_owned()));
    assert_eq!(s.post_message("q3", question).await["action"], "answer");

    // The explain panel: normalised text, topics and keywords, the scripts, the version; the
    // customer's markup is text. The version is the one that decided, even after a reload.
    let first = Rulebook::embedded().unwrap();
    let old_version = first.version.clone();
    let store = Arc::clone(s.gateway.runtime().store());
    let now = s.clock_now();
    tokio::task::spawn_blocking(move || store::save_rulebook(&*store, &first, "test", now))
        .await
        .unwrap()
        .unwrap();
    let script =
        "<script>window.__pwned = 1</script> Ik heb een KLACHT: de afvalinzameling is niet geweest";
    let decision = s.post_message("x9", script).await;
    assert_eq!(decision["action"], "escalate", "{decision}");
    let mut source = webcare_engine::RulebookSource::embedded();
    source.topics.text = source.topics.text.replacen(
        "\"paspoort*\", ",
        "\"paspoort*\", \"reisdocumentvariant\", ",
        1,
    );
    let newer = Rulebook::compile(source).unwrap();
    assert_ne!(newer.version, old_version);
    let runtime = Arc::clone(s.gateway.runtime());
    tokio::task::spawn_blocking(move || runtime.activate(newer, "test", now))
        .await
        .unwrap()
        .unwrap();
    let escalations = s.gateway.store(|st| st.open_escalations()).await.unwrap();
    let id = escalations
        .iter()
        .find(|e| e.messages.iter().any(|m| m == "x9"))
        .unwrap()
        .id;
    let (status, page) = s
        .page(Some(&anna), &format!("/inbox/escalations/{id}"))
        .await;
    assert_eq!(status, 200);
    let start = page
        .find("<section id=\"explain\">")
        .expect("the explain panel");
    let panel = &page[start..start + page[start..].find("</section>").unwrap()];
    assert!(
        panel.contains("&lt;script&gt;window.__pwned = 1&lt;/script&gt;"),
        "{panel}"
    );
    assert!(!page.contains("<script>window"));
    assert!(
        panel.contains(
            "<dd class=\"explain-normalised\">script window pwned 1 script ik heb een klacht"
        ),
        "the normalised text: {panel}"
    );
    let topic = decision["topics"][0].as_str().unwrap();
    assert!(
        panel.contains(&format!("<strong>{topic}</strong> (main)")),
        "{panel}"
    );
    assert!(
        panel.contains("matched <code>klacht"),
        "the keyword: {panel}"
    );
    assert!(panel.contains("escalate to `webcare`"), "{panel}");
    assert!(
        panel.contains("escalation.rhai:"),
        "the script line: {panel}"
    );
    assert!(
        panel.contains("<dd class=\"explain-governance\">let the proposal through unchanged"),
        "{panel}"
    );
    assert!(
        panel.contains(&format!(
            "<code class=\"explain-version\">{old_version}</code>"
        )),
        "{panel}"
    );
    // Both messages of the conversation are in the escalation: the one decided during the
    // crisis shows what governance changed, and says the switch was on; the other one was
    // explained by its own kept version without any caveat.
    let article = |id: &str| {
        let start = panel
            .find(&format!(
                "<article class=\"explain\" data-message=\"{id}\">"
            ))
            .unwrap_or_else(|| panic!("{id} in {panel}"));
        let rest = &panel[start..];
        rest[..rest.find("</article>").unwrap()].to_owned()
    };
    let crisis = article("q2");
    assert!(
        crisis.contains("changed it: escalate to `webcare` (high) with template `holding_crisis_mode` — crisis mode is on"),
        "{crisis}"
    );
    assert!(
        crisis.contains("crisis mode was on when this message was decided"),
        "{crisis}"
    );
    assert!(
        !article("x9").contains("class=\"note\""),
        "the kept version explains it: {panel}"
    );

    // The same explanation through the API; another team's agent may not read it.
    let (status, json) = s
        .api("GET", &format!("/{id}/explain"), Some(&anna_token), None)
        .await;
    assert_eq!(status, 200, "{json}");
    let x9 = json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "x9")
        .unwrap();
    assert_eq!(x9["text"], script, "JSON keeps the text as is");
    assert_eq!(x9["diagnostics"]["rulebook"], old_version.as_str());
    assert_eq!(x9["explained_with"], old_version.as_str());
    assert_eq!(x9["diagnostics"]["topics"][0]["matched"][0], "klacht");
    assert!(
        x9["escalation_script"]
            .as_str()
            .unwrap()
            .starts_with("escalate to `webcare` (normal)")
    );
    let (status, _) = s
        .api("GET", &format!("/{id}/explain"), Some(&lex_token), None)
        .await;
    assert_eq!(status, 403);
}
