//! The HTTP channel: its handler through `oneshot` (status codes and JSON errors), and end to
//! end on 127.0.0.1 with the outbox worker posting signed callbacks to a local receiver.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::post;
use tokio::sync::oneshot;
use tower::ServiceExt;
use webcare_adapters::gateway::Gateway;
use webcare_adapters::http::{self, Callback, CallbackDeliver, HttpChannelConfig, SigningKey};
use webcare_adapters::outbox::{OutboxConfig, OutboxWorker};
use webcare_engine::store::{self, OutboxStatus, StoreOptions};
use webcare_engine::{ChannelKind, Rulebook, Runtime};

const QUESTION: &str = "Wat zijn de openingstijden van het stadskantoor?";

struct Fixture {
    _dir: tempfile::TempDir,
    gateway: Gateway,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&StoreOptions {
        data_dir: dir.path().join("data"),
        ..StoreOptions::default()
    })
    .unwrap();
    let runtime = Arc::new(Runtime::new(Rulebook::embedded().unwrap(), store));
    Fixture {
        _dir: dir,
        gateway: Gateway::new(runtime),
    }
}

fn post_json() -> axum::http::request::Builder {
    Request::post("/api/v1/messages").header("content-type", "application/json")
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    (status, json)
}

fn json_request(body: &str) -> Request<Body> {
    post_json().body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_gets_its_decision_and_a_repeat_gets_the_same_one() {
    let f = fixture();
    let app = http::routes(f.gateway.clone(), HttpChannelConfig::default()).unwrap();
    // A bridge's own time of receipt, within the last week.
    let at = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let body = format!(
        r#"{{"id":"mail-1","conversation":"case-7","author":"ann@example.org","text":"{QUESTION}","received_at":"{at}","metadata":{{"bridge":"mail"}}}}"#
    );
    let (status, first) = call(&app, json_request(&body)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["id"], "mail-1");
    assert_eq!(first["action"], "answer");
    assert_eq!(first["category"], "question");
    assert_eq!(first["duplicate"], false);
    for key in [
        "team",
        "priority",
        "topics",
        "template",
        "reply",
        "sentiment",
        "language",
        "rulebook",
        "rules",
        "script_errors",
        "reasons",
    ] {
        assert!(first.get(key).is_some(), "`{key}` missing in {first}");
    }
    assert!(first["reply"].as_str().unwrap().contains("stadskantoor"));

    let (status, again) = call(&app, json_request(&body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["reply"], first["reply"]);
    let stats = f.gateway.store(|s| s.stats()).await.unwrap();
    assert_eq!(stats.messages, 1, "a repeat is stored once");
    let stored = f
        .gateway
        .store(|s| s.message(ChannelKind::Http, "mail-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.message.conversation, "case-7");
    assert_eq!(stored.message.metadata.get("bridge").unwrap(), "mail");

    // Without a callback the reply was given in the response: it is recorded as sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.gateway.store(|s| s.stats()).await.unwrap().pending_outbox > 0 {
        assert!(Instant::now() < deadline, "the inline reply stays pending");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let outbox = f
        .gateway
        .store(|s| s.conversation_outbox(ChannelKind::Http, "case-7"))
        .await
        .unwrap();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert!(
        matches!(outbox[0].status, OutboxStatus::Sent { .. }),
        "{outbox:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_clear_json_error() {
    let f = fixture();
    let app = http::routes(f.gateway.clone(), HttpChannelConfig::default()).unwrap();

    let big = format!(
        r#"{{"id":"big","text":"{}"}}"#,
        "a".repeat(http::DEFAULT_MAX_BODY)
    );
    let (status, error) = call(&app, json_request(&big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error["error"].as_str().unwrap().contains("larger than"));

    let (status, error) = call(&app, json_request(r#"{"id": "m1", "text": "#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = error["error"].as_str().unwrap();
    assert!(
        message.starts_with("malformed JSON") && message.contains("line 1 column"),
        "{message}"
    );

    let (status, error) = call(&app, json_request(r#"{"id":"m1","txt":"hallo"}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        error["error"].as_str().unwrap().contains("`txt`"),
        "{error}"
    );

    let request = Request::post("/api/v1/messages")
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"id":"m1","text":"x"}"#))
        .unwrap();
    let (status, error) = call(&app, request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );

    assert_eq!(f.gateway.store(|s| s.stats()).await.unwrap().messages, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_signatures_cover_a_fresh_timestamp() {
    let f = fixture();
    let key = SigningKey::new("shared-secret");
    let config = HttpChannelConfig {
        secret: Some(key.clone()),
        require_signature: true,
        ..HttpChannelConfig::default()
    };
    let app = http::routes(f.gateway.clone(), config).unwrap();
    let body = format!(r#"{{"id":"s1","text":"{QUESTION}"}}"#);
    let now = chrono::Utc::now().timestamp();
    let signed = |key: &SigningKey, at: i64, body: &str| {
        post_json()
            .header("x-webcare-timestamp", at.to_string())
            .header(
                "x-webcare-signature",
                key.sign_timestamped(at, body.as_bytes()),
            )
            .body(Body::from(body.to_owned()))
            .unwrap()
    };

    let (status, error) = call(&app, json_request(&body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(error["error"].as_str().unwrap().contains("missing"));

    let (status, error) = call(&app, signed(&SigningKey::new("guess"), now, &body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(error["error"].as_str().unwrap().contains("does not match"));

    // The signature of the body alone (the old scheme) no longer passes.
    let request = post_json()
        .header("x-webcare-timestamp", now.to_string())
        .header("x-webcare-signature", key.sign(body.as_bytes()))
        .body(Body::from(body.clone()))
        .unwrap();
    let (status, _) = call(&app, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A request captured an hour ago and replayed now is refused, though correctly signed.
    let (status, error) = call(&app, signed(&key, now - 3600, &body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        error["error"].as_str().unwrap().contains("from now"),
        "{error}"
    );
    // A timestamp that was signed for another body does not transfer.
    let request = post_json()
        .header("x-webcare-timestamp", (now + 1).to_string())
        .header(
            "x-webcare-signature",
            key.sign_timestamped(now, body.as_bytes()),
        )
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(call(&app, request).await.0, StatusCode::UNAUTHORIZED);

    let (status, decision) = call(&app, signed(&key, now, &body)).await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    assert_eq!(decision["action"], "answer");
    assert_eq!(f.gateway.store(|s| s.stats()).await.unwrap().messages, 1);

    // A secret is needed to require signatures.
    let config = HttpChannelConfig {
        require_signature: true,
        ..HttpChannelConfig::default()
    };
    assert!(http::routes(f.gateway.clone(), config).is_err());
}

/// What the local callback receiver saw.
#[derive(Default)]
struct Received {
    callbacks: Vec<Callback>,
    bad_signatures: usize,
    /// Answer this many callbacks with 503 first.
    fail_first: usize,
}

async fn receiver(
    State((key, received)): State<(SigningKey, Arc<Mutex<Received>>)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut received = received.lock().unwrap();
    let signed = headers
        .get("x-webcare-signature")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| key.verify(&body, v));
    if !signed {
        received.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if received.fail_first > 0 {
        received.fail_first -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let callback: Callback = serde_json::from_slice(&body).unwrap();
    let delivery = headers
        .get("x-webcare-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap();
    assert_eq!(delivery, callback.id.to_string());
    received.callbacks.push(callback);
    StatusCode::NO_CONTENT
}

/// Serves `app` on 127.0.0.1:0 until the returned sender fires.
async fn serve(app: Router) -> (String, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (format!("http://{addr}"), stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_replies_reach_the_callback_signed_and_once() {
    let f = fixture();
    let key = SigningKey::new("callback-secret");
    let received = Arc::new(Mutex::new(Received {
        fail_first: 1,
        ..Received::default()
    }));
    let callback_app = Router::new()
        .route("/hook", post(receiver))
        .with_state((key.clone(), Arc::clone(&received)));
    let (callback_base, stop_callback) = serve(callback_app).await;
    let callback_url = format!("{callback_base}/hook?token=abc");

    let config = HttpChannelConfig {
        callback_url: Some(callback_url.clone()),
        secret: Some(key.clone()),
        ..HttpChannelConfig::default()
    };
    let (webcare, stop_webcare) = serve(http::routes(f.gateway.clone(), config).unwrap()).await;
    let mut worker = OutboxWorker::new(
        f.gateway.clone(),
        OutboxConfig {
            base_delay: Duration::from_millis(50),
            ..OutboxConfig::default()
        },
    );
    worker.register(
        ChannelKind::Http,
        Arc::new(CallbackDeliver::new(&callback_url, Some(key), Duration::from_secs(5)).unwrap()),
    );
    let (stop_worker, worker_stopped) = oneshot::channel::<()>();
    let worker = tokio::spawn(worker.run(async move {
        let _ = worker_stopped.await;
    }));

    let client = reqwest::Client::new();
    let body = format!(r#"{{"id":"wa-1","conversation":"+31600000000","text":"{QUESTION}"}}"#);
    let mut decisions = Vec::new();
    for _ in 0..2 {
        let response = client
            .post(format!("{webcare}/api/v1/messages"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        decisions.push(response.json::<serde_json::Value>().await.unwrap());
    }
    assert_eq!(decisions[0]["duplicate"], false);
    assert_eq!(decisions[1]["duplicate"], true);

    // The first callback got a 503 and was retried; the repeat delivery queued nothing more.
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.lock().unwrap().callbacks.is_empty() {
        assert!(Instant::now() < deadline, "no callback arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let received = received.lock().unwrap();
        assert_eq!(received.bad_signatures, 0);
        assert_eq!(received.callbacks.len(), 1, "answered once");
        let callback = &received.callbacks[0];
        assert_eq!(callback.kind, "reply");
        assert_eq!(callback.conversation, "+31600000000");
        assert_eq!(callback.in_reply_to, "wa-1");
        assert_eq!(callback.text, decisions[0]["reply"].as_str().unwrap());
    }
    let id = received.lock().unwrap().callbacks[0].id;
    let entry = f
        .gateway
        .store(move |s| s.outbox_entry(id))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(entry.status, OutboxStatus::Sent { .. }));
    assert_eq!(entry.attempts, 2, "one 503, then sent");

    // A later agent reply goes the same way.
    let reply = f
        .gateway
        .store(|s| {
            s.queue_reply(webcare_engine::store::NewReply {
                channel: ChannelKind::Http,
                conversation: "+31600000000".into(),
                in_reply_to: "wa-1".into(),
                text: "Goedemiddag, ik heb uw vraag doorgezet.".into(),
                actor: "agent-anna".into(),
                now: chrono::Utc::now(),
            })
        })
        .await
        .unwrap();
    f.gateway.wake_outbox();
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.lock().unwrap().callbacks.len() < 2 {
        assert!(Instant::now() < deadline, "the agent reply did not arrive");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(received.lock().unwrap().callbacks[1].id, reply.id);

    stop_worker.send(()).unwrap();
    worker.await.unwrap();
    let _ = stop_webcare.send(());
    let _ = stop_callback.send(());
}

/// The answers a fake callback gives, in order: status and `Retry-After`.
type Script = Arc<Mutex<Vec<(StatusCode, Option<&'static str>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_answers_map_onto_the_outbox_rules() {
    use webcare_adapters::delivery::{Deliver, DeliveryError};
    let statuses = Arc::new(Mutex::new(vec![
        (StatusCode::TOO_MANY_REQUESTS, Some("3")),
        (StatusCode::BAD_GATEWAY, None),
        (StatusCode::GONE, None),
        (StatusCode::MOVED_PERMANENTLY, None),
    ]));
    let app = Router::new().route(
        "/hook",
        post(|State(statuses): State<Script>| async move {
            let (status, retry_after) = statuses.lock().unwrap().remove(0);
            let mut headers = HeaderMap::new();
            if let Some(seconds) = retry_after {
                headers.insert("retry-after", seconds.parse().unwrap());
            }
            headers.insert("location", "http://127.0.0.1:1/".parse().unwrap());
            (status, headers)
        }),
    );
    let app = app.with_state(Arc::clone(&statuses));
    let (base, stop) = serve(app).await;
    let deliver =
        CallbackDeliver::new(&format!("{base}/hook"), None, Duration::from_secs(5)).unwrap();
    let entry = webcare_engine::store::OutboxEntry {
        id: 9,
        channel: ChannelKind::Http,
        conversation: "c".into(),
        in_reply_to: "m".into(),
        text: "t".into(),
        attempts: 0,
        last_error: None,
        status: OutboxStatus::Pending,
        created_at: chrono::Utc::now(),
        next_attempt_at: chrono::Utc::now(),
    };
    assert_eq!(
        deliver.deliver(&entry).await,
        Err(DeliveryError::RateLimited {
            retry_after: Duration::from_secs(3)
        })
    );
    assert!(matches!(
        deliver.deliver(&entry).await,
        Err(DeliveryError::Temporary(e)) if e.contains("502")
    ));
    assert!(matches!(
        deliver.deliver(&entry).await,
        Err(DeliveryError::Permanent(e)) if e.contains("410")
    ));
    assert!(matches!(
        deliver.deliver(&entry).await,
        Err(DeliveryError::Permanent(e)) if e.contains("301")
    ));
    let _ = stop.send(());

    // Nobody listening: temporary, and the URL (with its token) is not in the error.
    let closed = CallbackDeliver::new(
        "http://127.0.0.1:9/hook?token=s3cret",
        None,
        Duration::from_secs(2),
    )
    .unwrap();
    match closed.deliver(&entry).await {
        Err(DeliveryError::Temporary(e)) => assert!(!e.contains("s3cret"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(CallbackDeliver::new("ftp://x/", None, Duration::from_secs(1)).is_err());
}

/// Without a callback the reply travels in the response, so it is stored as sent in the intake
/// transaction itself: at no moment is it pending, so a crash followed by configuring a callback
/// URL cannot send it a second time.
#[tokio::test]
async fn an_inline_reply_is_stored_as_sent_with_its_message() {
    let f = fixture();
    let app = http::routes(f.gateway.clone(), HttpChannelConfig::default()).unwrap();
    let body = format!(r#"{{"id":"inline-1","conversation":"case-9","text":"{QUESTION}"}}"#);
    let (status, decision) = call(&app, json_request(&body)).await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    assert!(decision["reply"].is_string());
    // Read at once, without giving any background task a turn.
    let store = f.gateway.runtime().store();
    assert_eq!(store.stats().unwrap().pending_outbox, 0);
    let outbox = store
        .conversation_outbox(ChannelKind::Http, "case-9")
        .unwrap();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert!(
        matches!(outbox[0].status, OutboxStatus::Sent { .. }),
        "{outbox:?}"
    );
    assert_eq!(outbox[0].attempts, 1);
}

/// Whatever a caller sends to the HTTP channel (any bytes, any JSON, any content type), the
/// answer is a decision (200) or a clear JSON error (400, 413, 415 or 422), never a panic or a
/// server error; and only a 200 stores a message.
#[test]
fn any_request_gets_a_decision_or_a_clear_error() {
    use proptest::prelude::*;

    let f = fixture();
    let app = http::routes(
        f.gateway.clone(),
        HttpChannelConfig {
            max_body: 2048,
            ..HttpChannelConfig::default()
        },
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stored = Arc::new(Mutex::new(0u64));
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..3000),
        (any::<String>(), "[ -~]{1,20}", any::<String>()).prop_map(|(id, text, extra)| {
            serde_json::json!({"id": id, "text": text, "author": extra})
                .to_string()
                .into_bytes()
        }),
        "[ -~]{1,12}".prop_map(|text| {
            serde_json::json!({"id": format!("m-{text}"), "text": format!("vraag {text}")})
                .to_string()
                .into_bytes()
        }),
    ];
    let content_type = prop_oneof![
        Just("application/json"),
        Just("application/json; charset=utf-8"),
        Just("text/plain"),
        Just(""),
    ];
    let config = ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    };
    proptest!(config, |(body in body, content_type in content_type)| {
        let request = Request::post("/api/v1/messages")
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap();
        let (status, json) = runtime.block_on(call(&app, request));
        match status {
            StatusCode::OK => {
                let action = json["action"].as_str().unwrap_or_default();
                prop_assert!(["answer", "escalate", "log"].contains(&action), "{}", json);
                if json["duplicate"] == false {
                    *stored.lock().unwrap() += 1;
                }
            }
            StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY => {
                let error = json["error"].as_str().unwrap_or_default();
                prop_assert!(!error.trim().is_empty(), "{}: {}", status, json);
            }
            other => prop_assert!(false, "{}: {}", other, json),
        }
    });
    let messages = runtime
        .block_on(f.gateway.store(|s| s.stats()))
        .unwrap()
        .messages;
    let stored = *stored.lock().unwrap();
    assert!(stored > 0, "some requests were taken in");
    assert_eq!(messages, stored, "only a 200 stores a message");
}
