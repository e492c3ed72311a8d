//! The Meta adapter end to end: a real runtime with the embedded rulebook and a redb store in a
//! temp dir, the webhook served on 127.0.0.1 and reached by real signed HTTP POSTs, the real
//! outbox worker and `MetaDeliver` against a fake Graph API (`fakes/graph.rs`) that enforces the
//! 24-hour window and answers with Graph's error shapes. Time is a manual clock the test moves,
//! shared by the service and the fake. Proves: a WhatsApp question is answered in its chat, an
//! unsigned or badly signed delivery is refused and never decided, the subscription check
//! answers only the verify token, a repeated delivery is decided once, a location reaches the
//! escalation with its coordinates, a 130429 is retried after waiting, the bot does not reply
//! after the window, an agent's reply after it is refused with the reason or sent as the
//! configured template, `delivered` and `read` statuses are kept on the reply, a `failed`
//! status of a sent reply marks it (Meta's code and title) and opens an escalation, and after a
//! restart a status still finds its reply by the outbox id sent along with the message;
//! Messenger's and Instagram's delivery and read events mark the replies they cover (by id, and
//! by watermark: everything sent until then).

#![allow(clippy::unwrap_used)]

#[path = "fakes/graph.rs"]
mod fake;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fake::{ACCESS_TOKEN, APP_SECRET, Answer, CUSTOMER, Fake, PHONE_NUMBER_ID, VERIFY_TOKEN};
use serde_json::json;
use tokio::sync::oneshot;
use webcare_adapters::gateway::Gateway;
use webcare_adapters::meta::{MetaConfig, MetaWebhook, ReplyTemplate};
use webcare_adapters::outbox::{OutboxConfig, OutboxWorker};
use webcare_adapters::secret::Secret;
use webcare_engine::clock::ManualClock;
use webcare_engine::store::{self, NewReply, OutboxEntry, OutboxStatus, StoreOptions};
use webcare_engine::{Action, ChannelKind, Rulebook, Runtime, Store};

const QUESTION: &str = "Hoe vraag ik een nieuw paspoort aan?";
const CONVERSATION: &str = "1065550100:31612345678";

struct Harness {
    _dir: tempfile::TempDir,
    fake: Fake,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    gateway: Gateway,
    webhook: String,
    stop: Option<oneshot::Sender<()>>,
}

fn start_time() -> DateTime<Utc> {
    // A Monday morning: office hours, so nothing depends on the out-of-hours rules.
    DateTime::parse_from_rfc3339("2026-03-02T09:30:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

impl Harness {
    async fn start(template: Option<ReplyTemplate>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = store::open(&StoreOptions {
            data_dir: dir.path().join("data"),
            ..StoreOptions::default()
        })
        .unwrap();
        let runtime = Arc::new(Runtime::new(
            Rulebook::embedded().unwrap(),
            Arc::clone(&store),
        ));
        let clock = ManualClock::shared(start_time());
        let gateway = Gateway::new(runtime).with_clock(clock.clone());
        let fake = fake::serve().await;
        fake.set_now(start_time());
        let config = MetaConfig {
            graph_url: fake.url.clone(),
            reply_template: template,
            rate_limit_wait: Duration::from_millis(300),
            ..MetaConfig::new(
                Secret::new(APP_SECRET),
                Secret::new(VERIFY_TOKEN),
                Secret::new(ACCESS_TOKEN),
            )
        };
        let hook = MetaWebhook::new(gateway.clone(), config).unwrap();
        let mut worker = OutboxWorker::new(
            gateway.clone(),
            OutboxConfig {
                base_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(200),
                max_attempts: 3,
                poll: Duration::from_millis(100),
                ..OutboxConfig::default()
            },
        );
        for channel in webcare_adapters::meta::CHANNELS {
            worker.register(channel, Arc::new(hook.deliver(channel).unwrap()));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let webhook = format!("http://{}{}", listener.local_addr().unwrap(), hook.path());
        let routes = hook.routes();
        tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(worker.run(async move {
            let _ = stopped.await;
        }));
        Harness {
            _dir: dir,
            fake,
            store,
            clock,
            gateway,
            webhook,
            stop: Some(stop),
        }
    }

    async fn post(&self, payload: &serde_json::Value) -> u16 {
        self.fake
            .post_signed(&self.webhook, payload, APP_SECRET)
            .await
            .as_u16()
    }

    /// Moves the service's clock and the fake's together.
    fn advance(&self, by: chrono::Duration) -> DateTime<Utc> {
        let now = self.clock.advance(by);
        self.fake.set_now(now);
        now
    }

    fn outbox(&self) -> Vec<OutboxEntry> {
        self.store
            .conversation_outbox(ChannelKind::Whatsapp, CONVERSATION)
            .unwrap()
    }

    /// Posts the question as message `id` and waits until the bot's answer is sent.
    async fn answered(&self, id: &str) -> OutboxEntry {
        assert_eq!(
            self.post(&fake::whatsapp_text(id, start_time(), QUESTION))
                .await,
            200
        );
        eventually(Duration::from_secs(5), || {
            self.outbox()
                .into_iter()
                .find(|e| matches!(e.status, OutboxStatus::Sent { .. }))
        })
        .await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn eventually<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_whatsapp_question_is_answered_in_its_chat() {
    let h = Harness::start(None).await;
    let status = h
        .post(&fake::whatsapp_text("wamid.IN1", start_time(), QUESTION))
        .await;
    assert_eq!(status, 200);
    let stored = h.store.message(ChannelKind::Whatsapp, "wamid.IN1").unwrap();
    let stored = stored.expect("acknowledged only once stored");
    assert!(
        matches!(stored.decision.action, Action::Answer { .. }),
        "{:?}",
        stored.decision
    );
    assert_eq!(stored.message.metadata["display_name"], "Ann de Vries");
    let sends = eventually(Duration::from_secs(5), || {
        let sends = h.fake.sends();
        (!sends.is_empty()).then_some(sends)
    })
    .await;
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].account, PHONE_NUMBER_ID);
    assert_eq!(sends[0].to(), CUSTOMER);
    assert!(
        sends[0].text().to_lowercase().contains("paspoort"),
        "{}",
        sends[0].text()
    );
    eventually(Duration::from_secs(5), || {
        h.outbox()
            .iter()
            .all(|e| matches!(e.status, OutboxStatus::Sent { .. }))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn unsigned_or_badly_signed_deliveries_are_refused_and_never_decided() {
    let h = Harness::start(None).await;
    let payload = fake::whatsapp_text("wamid.FORGED", start_time(), QUESTION);
    let body = serde_json::to_vec(&payload).unwrap();
    assert_eq!(h.fake.post_raw(&h.webhook, body.clone(), None).await, 401);
    let wrong = webcare_adapters::meta::sign("not-the-app-secret", &body);
    assert_eq!(
        h.fake
            .post_raw(&h.webhook, body.clone(), Some(&wrong))
            .await,
        403
    );
    // The right signature over other bytes: the body was changed on the way.
    let mut tampered = body.clone();
    tampered.push(b' ');
    let signed_original = webcare_adapters::meta::sign(APP_SECRET, &body);
    assert_eq!(
        h.fake
            .post_raw(&h.webhook, tampered, Some(&signed_original))
            .await,
        403
    );
    assert!(
        h.store
            .message(ChannelKind::Whatsapp, "wamid.FORGED")
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        h.fake.sends().is_empty(),
        "nothing was decided, so nothing is sent"
    );
}

#[tokio::test]
async fn the_subscription_check_answers_only_the_verify_token() {
    let h = Harness::start(None).await;
    let client = reqwest::Client::new();
    let check = |token: &str| {
        client.get(&h.webhook).query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", token),
            ("hub.challenge", "1158201444"),
        ])
    };
    let ok = check(VERIFY_TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let refused = check("guess").send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(!refused.text().await.unwrap().contains("1158201444"));
}

#[tokio::test]
async fn a_repeated_delivery_is_decided_and_answered_once() {
    let h = Harness::start(None).await;
    let payload = fake::whatsapp_text("wamid.IN2", start_time(), QUESTION);
    assert_eq!(h.post(&payload).await, 200);
    assert_eq!(h.post(&payload).await, 200);
    eventually(Duration::from_secs(5), || {
        (!h.fake.sends().is_empty()).then_some(())
    })
    .await;
    // Meta retries once more after the reply went out.
    assert_eq!(h.post(&payload).await, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h.fake.sends().len(), 1, "answered once");
    let messages = h
        .store
        .conversation_messages(ChannelKind::Whatsapp, CONVERSATION)
        .unwrap();
    assert_eq!(messages.len(), 1, "stored and decided once");
}

#[tokio::test]
async fn a_location_reaches_the_escalation_with_its_coordinates() {
    let h = Harness::start(None).await;
    let report = "Er ligt een boom over het fietspad, hij is bij de storm omgewaaid";
    assert_eq!(
        h.post(&fake::whatsapp_text("wamid.R1", start_time(), report))
            .await,
        200
    );
    let location = fake::whatsapp(
        "wamid.R2",
        start_time(),
        json!({ "type": "location", "location": {
            "latitude": 52.090737, "longitude": 5.121420, "name": "Maliebaan", "address": "Utrecht"
        }}),
    );
    assert_eq!(h.post(&location).await, 200);
    let escalations = h.store.open_escalations().unwrap();
    let escalation = escalations
        .iter()
        .find(|e| e.conversation == CONVERSATION)
        .unwrap_or_else(|| panic!("the report is escalated: {escalations:?}"));
    assert!(
        escalation.messages.contains(&"wamid.R2".to_owned()),
        "the location joins the report's escalation: {escalation:?}"
    );
    let stored = h
        .store
        .message(ChannelKind::Whatsapp, "wamid.R2")
        .unwrap()
        .unwrap();
    assert!(
        stored.message.text.contains("52.090737, 5.121420"),
        "{}",
        stored.message.text
    );
    assert!(stored.message.text.contains("Maliebaan"));
}

#[tokio::test]
async fn a_photo_after_an_emergency_joins_the_crisis_teams_escalation() {
    let h = Harness::start(None).await;
    let emergency =
        "Er is een boom op een auto gevallen aan de Maliebaan en er zit iemand bekneld, kom snel!";
    assert_eq!(
        h.post(&fake::whatsapp_text("wamid.E1", start_time(), emergency))
            .await,
        200
    );
    let photo = fake::whatsapp(
        "wamid.E2",
        start_time(),
        json!({ "type": "image", "image": { "id": "MEDIA7", "mime_type": "image/jpeg" } }),
    );
    assert_eq!(h.post(&photo).await, 200);
    let open: Vec<_> = h
        .store
        .open_escalations()
        .unwrap()
        .into_iter()
        .filter(|e| e.conversation == CONVERSATION)
        .collect();
    assert_eq!(
        open.len(),
        1,
        "one case, not a second one for the photo: {open:?}"
    );
    assert_eq!(open[0].team, "crisis");
    assert!(
        open[0].messages.contains(&"wamid.E2".to_owned()),
        "the crisis team sees the photo: {open:?}"
    );
}

#[tokio::test]
async fn a_rate_limited_reply_waits_and_then_goes_out() {
    let h = Harness::start(None).await;
    h.fake.script(&[Answer::RateLimited]);
    assert_eq!(
        h.post(&fake::whatsapp_text("wamid.IN3", start_time(), QUESTION))
            .await,
        200
    );
    let postponed = eventually(Duration::from_secs(5), || {
        h.outbox().into_iter().find(|e| e.last_error.is_some())
    })
    .await;
    assert!(
        postponed
            .last_error
            .as_deref()
            .unwrap()
            .contains("rate limited"),
        "{postponed:?}"
    );
    assert_eq!(postponed.attempts, 0, "waiting is not a failed attempt");
    // The worker waits the rate limit out; move the clock past it so the entry is due.
    h.advance(chrono::Duration::seconds(1));
    h.gateway.wake_outbox();
    eventually(Duration::from_secs(5), || {
        h.outbox()
            .iter()
            .all(|e| matches!(e.status, OutboxStatus::Sent { .. }))
            .then_some(())
    })
    .await;
    assert_eq!(h.fake.sends().len(), 1);
    assert_eq!(h.fake.state.lock().unwrap().attempts, 2);
}

#[tokio::test]
async fn the_bot_does_not_reply_after_the_window() {
    let h = Harness::start(None).await;
    // Delivered late: the customer wrote 25 hours ago (Meta kept retrying while webcare was down).
    let wrote = start_time() - chrono::Duration::hours(25);
    assert_eq!(
        h.post(&fake::whatsapp_text("wamid.OLD", wrote, QUESTION))
            .await,
        200
    );
    let dead = eventually(Duration::from_secs(5), || {
        h.outbox()
            .into_iter()
            .find(|e| e.status == OutboxStatus::Dead)
    })
    .await;
    let error = dead.last_error.unwrap();
    assert!(error.contains("24-hour customer service window"), "{error}");
    assert!(error.contains("the bot does not reply"), "{error}");
    assert!(h.fake.sends().is_empty());
    let escalated = h.store.open_escalations().unwrap();
    assert!(
        escalated.iter().any(|e| e.conversation == CONVERSATION),
        "a person must follow up: {escalated:?}"
    );
}

/// A message that escalates, and the agent's reply 25 hours later; returns its outbox entry.
async fn agent_replies_after_the_window(h: &Harness) -> u64 {
    let legal = "Ik maak bezwaar tegen de aanslag, mijn advocaat neemt contact op";
    assert_eq!(
        h.post(&fake::whatsapp_text("wamid.L1", start_time(), legal))
            .await,
        200
    );
    let escalation = h
        .store
        .open_escalations()
        .unwrap()
        .into_iter()
        .find(|e| e.conversation == CONVERSATION)
        .expect("escalated");
    // Whatever the bot sent (a holding reply) goes out inside the window.
    eventually(Duration::from_secs(5), || {
        h.outbox()
            .iter()
            .all(|e| e.status != OutboxStatus::Pending)
            .then_some(())
    })
    .await;
    let bot_sends = h.fake.sends().len();
    let now = h.advance(chrono::Duration::hours(25));
    let (_, entry) = h
        .store
        .reply_to_escalation(
            escalation.id,
            "joke",
            "Uw bezwaar is ontvangen, we bellen u morgen.",
            now,
        )
        .unwrap();
    h.gateway.wake_outbox();
    assert_eq!(h.fake.sends().len(), bot_sends);
    entry.id
}

#[tokio::test]
async fn an_agent_reply_after_the_window_without_a_template_is_refused_with_the_reason() {
    let h = Harness::start(None).await;
    let id = agent_replies_after_the_window(&h).await;
    let before = h.fake.sends().len();
    let entry = eventually(Duration::from_secs(5), || {
        h.store
            .outbox_entry(id)
            .unwrap()
            .filter(|e| e.status == OutboxStatus::Dead)
    })
    .await;
    let error = entry.last_error.unwrap();
    assert!(error.contains("reply_template"), "{error}");
    assert_eq!(h.fake.sends().len(), before, "not sent");
    let escalation = h
        .store
        .open_escalations()
        .unwrap()
        .into_iter()
        .find(|e| e.reason.contains("24-hour"));
    assert!(escalation.is_some(), "the refusal reaches the team");
}

#[tokio::test]
async fn an_agent_reply_after_the_window_goes_out_as_the_template() {
    let template = ReplyTemplate {
        name: "antwoord_van_de_gemeente".into(),
        language: "nl".into(),
    };
    let h = Harness::start(Some(template)).await;
    let id = agent_replies_after_the_window(&h).await;
    eventually(Duration::from_secs(5), || {
        h.store
            .outbox_entry(id)
            .unwrap()
            .filter(|e| matches!(e.status, OutboxStatus::Sent { .. }))
    })
    .await;
    let sends = h.fake.sends();
    let last = sends.last().unwrap();
    assert_eq!(last.body["type"], "template");
    assert_eq!(last.body["template"]["name"], "antwoord_van_de_gemeente");
    assert_eq!(last.text(), "Uw bezwaar is ontvangen, we bellen u morgen.");
}

#[tokio::test]
async fn delivered_and_read_statuses_are_kept_on_the_reply() {
    let h = Harness::start(None).await;
    let reply = h.answered("wamid.IN5").await;
    let delivered = start_time() + chrono::Duration::seconds(3);
    let read = start_time() + chrono::Duration::seconds(40);
    // Read arrives first, and delivered twice (Meta posts again after a failure).
    for (status, at) in [
        ("read", read),
        ("delivered", delivered),
        ("delivered", read),
    ] {
        let payload = fake::whatsapp_status("wamid.OUT1", status, at, None);
        assert_eq!(h.post(&payload).await, 200);
    }
    let receipts = h
        .store
        .outbox_receipts(ChannelKind::Whatsapp, CONVERSATION)
        .unwrap();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0].0, reply.id);
    assert_eq!(
        (receipts[0].1.delivered_at, receipts[0].1.read_at),
        (Some(delivered), Some(read))
    );
    assert!(receipts[0].1.failed.is_none());
    assert!(h.store.open_escalations().unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_status_marks_the_sent_reply_and_opens_an_escalation() {
    let h = Harness::start(None).await;
    let original = h.answered("wamid.IN4").await;
    assert!(h.store.open_escalations().unwrap().is_empty());
    let failed_at = start_time() + chrono::Duration::minutes(2);
    let status = fake::whatsapp_status(
        "wamid.OUT1",
        "failed",
        failed_at,
        Some((131026, "Message undeliverable")),
    );
    assert_eq!(h.post(&status).await, 200);

    // The original reply is marked, with Meta's code and title; it stays the reply that was
    // sent (so the inbox shows what went out and what became of it).
    let receipts = h
        .store
        .outbox_receipts(ChannelKind::Whatsapp, CONVERSATION)
        .unwrap();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0].0, original.id);
    let failure = receipts[0].1.failed.clone().unwrap();
    assert_eq!(
        (failure.code, failure.title.as_str(), failure.at),
        (131026, "Message undeliverable", failed_at)
    );
    assert_eq!(
        h.store.outbox_entry(original.id).unwrap().unwrap().status,
        original.status
    );

    let escalations = h.store.open_escalations().unwrap();
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert!(
        escalations[0].reason.contains("131026"),
        "{}",
        escalations[0].reason
    );
    assert!(
        h.outbox().iter().any(|e| e.status == OutboxStatus::Dead),
        "the failed reply is a dead letter"
    );
    // Meta posting the same status again changes nothing.
    assert_eq!(h.post(&status).await, 200);
    assert_eq!(h.store.open_escalations().unwrap().len(), 1);
}

#[tokio::test]
async fn after_a_restart_a_status_finds_its_reply_by_the_outbox_id_sent_along() {
    use tower::ServiceExt;

    let h = Harness::start(None).await;
    let reply = h.answered("wamid.IN6").await;
    let sent = h.fake.sends();
    let data = sent[0].body["biz_opaque_callback_data"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(webcare_adapters::meta::outbox_of(&data), Some(reply.id));

    // A new webhook on the same store: what a restarted webcare has, with nothing in memory.
    let restarted = MetaWebhook::new(
        h.gateway.clone(),
        MetaConfig::new(
            Secret::new(APP_SECRET),
            Secret::new(VERIFY_TOKEN),
            Secret::new(ACCESS_TOKEN),
        ),
    )
    .unwrap()
    .routes();
    let post = |payload: serde_json::Value| {
        let body = serde_json::to_vec(&payload).unwrap();
        let signature = webcare_adapters::meta::sign(APP_SECRET, &body);
        let request = axum::http::Request::post("/meta/webhook")
            .header("content-type", "application/json")
            .header(webcare_adapters::meta::SIGNATURE_HEADER, signature)
            .body(axum::body::Body::from(body))
            .unwrap();
        let router = restarted.clone();
        async move { router.oneshot(request).await.unwrap().status().as_u16() }
    };
    let with_data = |mut payload: serde_json::Value| {
        payload["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] =
            json!(data);
        payload
    };
    let read_at = start_time() + chrono::Duration::minutes(1);
    let read = fake::whatsapp_status("wamid.OUT1", "read", read_at, None);
    assert_eq!(post(with_data(read)).await, 200);
    let failed_at = start_time() + chrono::Duration::minutes(2);
    let failed = with_data(fake::whatsapp_status(
        "wamid.OUT1",
        "failed",
        failed_at,
        Some((131026, "Message undeliverable")),
    ));
    assert_eq!(post(failed.clone()).await, 200);
    // Posted again by Meta: still one escalation.
    assert_eq!(post(failed).await, 200);

    let receipts = h
        .store
        .outbox_receipts(ChannelKind::Whatsapp, CONVERSATION)
        .unwrap();
    let receipt = &receipts.iter().find(|(id, _)| *id == reply.id).unwrap().1;
    assert_eq!(receipt.read_at, Some(read_at));
    assert_eq!(receipt.failed.as_ref().map(|f| f.code), Some(131026));
    let escalations = h.store.open_escalations().unwrap();
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert!(escalations[0].reason.contains("131026"));

    // A status without webcare's data (another app's message) is only logged.
    let foreign = fake::whatsapp_status("wamid.OTHER", "failed", failed_at, Some((1, "x")));
    assert_eq!(post(foreign).await, 200);
    assert_eq!(h.store.open_escalations().unwrap().len(), 1);
}

#[tokio::test]
async fn a_messenger_question_is_answered_to_its_sender_and_echoes_are_not_decided() {
    let h = Harness::start(None).await;
    let at = start_time().timestamp_millis();
    let delivery = json!({
        "object": "page",
        "entry": [{ "id": "PAGE1", "time": at, "messaging": [
            { "sender": { "id": "PSID7" }, "recipient": { "id": "PAGE1" }, "timestamp": at,
              "message": { "mid": "m_ASK", "text": QUESTION } },
            { "sender": { "id": "PAGE1" }, "recipient": { "id": "PSID7" }, "timestamp": at,
              "message": { "mid": "m_ECHO", "text": QUESTION, "is_echo": true } }
        ]}]
    });
    assert_eq!(h.post(&delivery).await, 200);
    let sends = eventually(Duration::from_secs(5), || {
        let sends = h.fake.sends();
        (!sends.is_empty()).then_some(sends)
    })
    .await;
    assert_eq!(sends[0].account, "PAGE1");
    assert_eq!(sends[0].to(), "PSID7");
    assert_eq!(sends[0].body["messaging_type"], "RESPONSE");
    assert!(sends[0].text().to_lowercase().contains("paspoort"));
    assert!(
        h.store
            .message(ChannelKind::Messenger, "m_ASK")
            .unwrap()
            .is_some()
    );
    assert!(
        h.store
            .message(ChannelKind::Messenger, "m_ECHO")
            .unwrap()
            .is_none(),
        "the page's own message is never decided"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.fake.sends().len(), 1);
}

/// A Messenger (`page`) or Instagram event from `user` to our `account`.
fn messaging(
    object: &str,
    account: &str,
    user: &str,
    event: serde_json::Value,
) -> serde_json::Value {
    let mut event = event;
    event["sender"] = json!({ "id": user });
    event["recipient"] = json!({ "id": account });
    json!({ "object": object, "entry": [{ "id": account, "time": 0, "messaging": [event] }] })
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

#[tokio::test]
async fn messenger_and_instagram_delivery_and_read_events_mark_the_replies_they_cover() {
    let h = Harness::start(None).await;
    let (page, user, conversation) = ("PAGE1", "PSID7", "PAGE1:PSID7");
    let harness = &h;
    let post = |event: serde_json::Value| {
        let payload = messaging("page", page, user, event);
        async move { harness.post(&payload).await }
    };
    let sent = |channel: ChannelKind, conversation: &'static str, n: usize| {
        let store = Arc::clone(&h.store);
        eventually(Duration::from_secs(5), move || {
            let sent: Vec<OutboxEntry> = store
                .conversation_outbox(channel, conversation)
                .unwrap()
                .into_iter()
                .filter(|e| matches!(e.status, OutboxStatus::Sent { .. }))
                .collect();
            (sent.len() >= n).then_some(sent)
        })
    };
    let receipt = |id: u64| {
        let receipts = h
            .store
            .outbox_receipts(ChannelKind::Messenger, conversation)
            .unwrap();
        let found = receipts.into_iter().find(|(r, _)| *r == id);
        found
            .map(|(_, r)| (r.delivered_at, r.read_at))
            .unwrap_or_default()
    };
    let at = |secs: i64| start_time() + chrono::Duration::seconds(secs);

    // The bot's answer (Meta calls it m_OUT1), then ten minutes later an agent's (m_OUT2).
    let question =
        json!({ "timestamp": ms(at(0)), "message": { "mid": "m_ASK", "text": QUESTION } });
    assert_eq!(post(question).await, 200);
    let first = sent(ChannelKind::Messenger, conversation, 1).await[0].id;
    let later = h.advance(chrono::Duration::minutes(10));
    h.store
        .queue_reply(NewReply {
            channel: ChannelKind::Messenger,
            conversation: conversation.to_owned(),
            in_reply_to: "m_ASK".to_owned(),
            text: "Neem uw oude paspoort mee naar de balie.".to_owned(),
            actor: "joke".to_owned(),
            now: later,
        })
        .unwrap();
    h.gateway.wake_outbox();
    let second = sent(ChannelKind::Messenger, conversation, 2).await[1].id;
    let ids: Vec<String> = h.fake.sends().iter().map(|s| s.to()).collect();
    assert_eq!(ids, [user, user], "both replies went to the sender");

    // Delivered: the first by its id, with a watermark that does not reach the second.
    let delivery = json!({ "timestamp": ms(at(5)),
        "delivery": { "mids": ["m_OUT1"], "watermark": ms(at(1)) } });
    assert_eq!(post(delivery).await, 200);
    // Read up to a minute in: the first only.
    let read = json!({ "timestamp": ms(at(90)), "read": { "watermark": ms(at(60)) } });
    assert_eq!(post(read).await, 200);
    assert_eq!(receipt(first), (Some(at(5)), Some(at(90))));
    assert_eq!(receipt(second), (None, None), "sent after both watermarks");

    // The second delivered by its id, though Meta's watermark is a moment before webcare
    // recorded the send; read by a watermark after it. Repeats change nothing.
    let delivered = later + chrono::Duration::seconds(2);
    let delivery = json!({ "timestamp": ms(delivered),
        "delivery": { "mids": ["m_OUT2"], "watermark": ms(later) - 1 } });
    let read_at = later + chrono::Duration::seconds(30);
    let read = json!({ "timestamp": ms(read_at), "read": { "watermark": ms(read_at) } });
    for event in [delivery.clone(), read.clone(), delivery, read] {
        assert_eq!(post(event).await, 200);
    }
    assert_eq!(receipt(second), (Some(delivered), Some(read_at)));
    assert_eq!(
        receipt(first),
        (Some(at(5)), Some(at(90))),
        "the first of each is kept"
    );
    assert!(
        h.store
            .message(ChannelKind::Messenger, "m_OUT2")
            .unwrap()
            .is_none(),
        "a receipt is never taken for a customer's message"
    );

    // Instagram names the message seen: it and everything before it are read.
    let ig = |event: serde_json::Value| messaging("instagram", "IG1", "IGSID3", event);
    let question =
        json!({ "timestamp": ms(later), "message": { "mid": "ig_ASK", "text": QUESTION } });
    assert_eq!(h.post(&ig(question)).await, 200);
    let reply = sent(ChannelKind::Instagram, "IG1:IGSID3", 1).await[0].id;
    let seen_at = later + chrono::Duration::seconds(45);
    let seen = json!({ "timestamp": ms(seen_at), "read": { "mid": "m_OUT3" } });
    assert_eq!(h.post(&ig(seen)).await, 200);
    let receipts = h
        .store
        .outbox_receipts(ChannelKind::Instagram, "IG1:IGSID3")
        .unwrap();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(
        (receipts[0].0, receipts[0].1.read_at),
        (reply, Some(seen_at))
    );
}
