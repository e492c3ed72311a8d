//! The web chat over a real WebSocket on 127.0.0.1: the conversation loop (hello, transcript,
//! ack, replies pushed by the outbox, an agent's reply later), the transcript after a
//! reconnect, and abuse (floods, garbage, binary and oversized frames) closing only the socket
//! that misbehaved. The widget in a real browser is tested in `tests/browser.rs`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tower::ServiceExt;
use webcare_adapters::gateway::Gateway;
use webcare_adapters::outbox::{OutboxConfig, OutboxWorker};
use webcare_adapters::webchat::{WebChat, WebChatConfig};
use webcare_engine::store::{self, StoreOptions};
use webcare_engine::{ChannelKind, Rulebook, Runtime};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const QUESTION: &str = "Wat zijn de openingstijden van het stadskantoor?";
const COMPLAINT: &str = "Ik heb een klacht over de afvalinzameling, al drie keer niet opgehaald";

struct Server {
    _dir: tempfile::TempDir,
    gateway: Gateway,
    chat: WebChat,
    base: String,
    stop: Vec<oneshot::Sender<()>>,
}

async fn start(config: WebChatConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&StoreOptions {
        data_dir: dir.path().join("data"),
        ..StoreOptions::default()
    })
    .unwrap();
    let runtime = Arc::new(Runtime::new(Rulebook::embedded().unwrap(), store));
    let gateway = Gateway::new(runtime);
    let chat = WebChat::new(gateway.clone(), config);
    let mut worker = OutboxWorker::new(gateway.clone(), OutboxConfig::default());
    worker.register(ChannelKind::Webchat, chat.deliver());
    let (stop_worker, worker_stopped) = oneshot::channel::<()>();
    tokio::spawn(worker.run(async move {
        let _ = worker_stopped.await;
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let app = chat.routes();
    tokio::spawn(async move {
        // With the peer's address, as `webcare run` serves it: the per-address limits need it.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stopped.await;
            })
            .await
            .unwrap();
    });
    Server {
        _dir: dir,
        gateway,
        chat,
        base: format!("ws://{addr}/webchat/ws"),
        stop: vec![stop_worker, stop_server],
    }
}

async fn open(url: &str) -> Socket {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next JSON frame, within 10 s.
async fn next(socket: &mut Socket) -> serde_json::Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .unwrap();
        match frame {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Reads until the server closes; returns the close code (None: closed without a code).
async fn closed(socket: &mut Socket) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("closed within 10 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

/// Connects from another loopback address (`127.0.0.2`), as a second visitor would.
async fn open_from(ip: &str, url: &str) -> Result<Socket, String> {
    let port: u16 = url
        .trim_start_matches("ws://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    let stream = socket
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .map(|(socket, _)| socket)
        .map_err(|e| e.to_string())
}

fn message(id: &str, text: &str) -> Message {
    Message::text(serde_json::json!({"type": "message", "id": id, "text": text}).to_string())
}

/// Connects, reads hello and transcript; returns the socket, the conversation id and the
/// transcript items.
async fn join(
    server: &Server,
    conversation: Option<&str>,
) -> (Socket, String, Vec<serde_json::Value>) {
    let url = match conversation {
        Some(id) => format!("{}?conversation={id}", server.base),
        None => server.base.clone(),
    };
    let mut socket = open(&url).await;
    let hello = next(&mut socket).await;
    assert_eq!(hello["type"], "hello");
    let id = hello["conversation"].as_str().unwrap().to_owned();
    // A reply to this conversation's earlier messages that is delivered while the socket joins
    // may be pushed just before the transcript (it is in the transcript too); skip it.
    let mut transcript = next(&mut socket).await;
    while transcript["type"] == "reply" {
        transcript = next(&mut socket).await;
    }
    assert_eq!(transcript["type"], "transcript");
    let items = transcript["items"].as_array().unwrap().clone();
    (socket, id, items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_gets_answers_holding_replies_and_agent_replies_and_survives_a_reconnect() {
    let server = start(WebChatConfig::default()).await;
    let (mut socket, conversation, items) = join(&server, None).await;
    assert!(items.is_empty());
    assert_eq!(conversation.len(), 33, "{conversation}");

    socket.send(message("q1", QUESTION)).await.unwrap();
    let ack = next(&mut socket).await;
    assert_eq!(
        (ack["type"].as_str(), ack["id"].as_str()),
        (Some("ack"), Some("q1"))
    );
    assert_eq!(ack["action"], "answer");
    let reply = next(&mut socket).await;
    assert_eq!(reply["type"], "reply");
    assert_eq!(reply["from"], "reply");
    assert!(reply["text"].as_str().unwrap().contains("stadskantoor"));

    socket.send(message("c1", COMPLAINT)).await.unwrap();
    let ack = next(&mut socket).await;
    assert_eq!(ack["action"], "escalate");
    let holding = next(&mut socket).await;
    assert_eq!(holding["type"], "reply");
    let holding_text = holding["text"].as_str().unwrap().to_owned();

    // The same widget id again (a resend after a reconnect) is taken in once.
    socket.send(message("c1", COMPLAINT)).await.unwrap();
    let ack = next(&mut socket).await;
    assert_eq!(ack["duplicate"], true);

    // An agent answers later; the reply is pushed into the open chat.
    let key = conversation.clone();
    server
        .gateway
        .store(move |s| {
            s.queue_reply(webcare_engine::store::NewReply {
                channel: ChannelKind::Webchat,
                conversation: key.clone(),
                in_reply_to: format!("{key}:c1"),
                text: "Hallo, ik ben Anna van de gemeente. Ik zoek het voor u uit.".into(),
                actor: "agent-anna".into(),
                now: chrono::Utc::now(),
            })
        })
        .await
        .unwrap();
    server.gateway.wake_outbox();
    let agent = next(&mut socket).await;
    assert_eq!(agent["type"], "reply");
    assert_eq!(
        agent["from"], "agent",
        "a person's reply, not the bot's: {agent}"
    );
    assert!(
        agent["text"]
            .as_str()
            .unwrap()
            .starts_with("Hallo, ik ben Anna")
    );
    socket.close(None).await.unwrap();

    // A reload: the same conversation, the whole transcript in order.
    let (_socket, again, items) = join(&server, Some(&conversation)).await;
    assert_eq!(again, conversation);
    let lines: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i["from"].as_str().unwrap(), i["text"].as_str().unwrap()))
        .collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[0], ("visitor", QUESTION));
    assert_eq!(lines[1].0, "reply");
    assert_eq!(lines[2], ("visitor", COMPLAINT));
    assert_eq!(lines[3], ("reply", holding_text.as_str()));
    assert_eq!(lines[4].0, "agent");
    assert!(lines[4].1.starts_with("Hallo, ik ben Anna"));
    assert_eq!(
        items[0]["id"], "q1",
        "the widget's own ids, so it can skip what it shows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_or_garbage_sending_socket_is_closed_and_nobody_else_notices() {
    let server = start(WebChatConfig {
        burst: 3,
        per_second: 0.5,
        max_frame: 1024,
        ..WebChatConfig::default()
    })
    .await;
    let (mut calm, _, _) = join(&server, None).await;

    let (mut flood, _, _) = join(&server, None).await;
    for i in 0..10 {
        if flood
            .send(message(&format!("f{i}"), "hallo"))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(closed(&mut flood).await, Some(1008));

    let (mut garbage, _, _) = join(&server, None).await;
    garbage
        .send(Message::text("<script>alert(1)</script>"))
        .await
        .unwrap();
    assert_eq!(closed(&mut garbage).await, Some(1007));

    let (mut binary, _, _) = join(&server, None).await;
    binary
        .send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .unwrap();
    assert_eq!(closed(&mut binary).await, Some(1003));

    let (mut huge, _, _) = join(&server, None).await;
    let _ = huge.send(message("h1", &"x".repeat(4096))).await;
    let code = closed(&mut huge).await;
    assert!(matches!(code, Some(1009) | None), "{code:?}");

    let (mut wrong_shape, _, _) = join(&server, None).await;
    wrong_shape
        .send(Message::text(
            r#"{"type":"message","id":"<img src=x onerror=alert(1)>","text":"hi"}"#,
        ))
        .await
        .unwrap();
    assert_eq!(closed(&mut wrong_shape).await, Some(1007));

    // The calm visitor is still served.
    calm.send(message("q1", QUESTION)).await.unwrap();
    let ack = next(&mut calm).await;
    assert_eq!(ack["type"], "ack");
    let reply = next(&mut calm).await;
    assert_eq!(reply["type"], "reply");

    // Shutdown asks the remaining sockets to go away (the widget reconnects elsewhere).
    server.chat.shut_down();
    assert_eq!(closed(&mut calm).await, Some(1001));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.chat.open_sockets() > 0 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(server.stop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_are_served_with_safe_headers() {
    let server = start(WebChatConfig::default()).await;
    let app = server.chat.routes();
    for (path, kind) in [
        ("/", "text/html"),
        ("/webchat/widget.js", "text/javascript"),
        ("/webchat/widget.css", "text/css"),
    ] {
        let response = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    let page = app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let html = axum::body::to_bytes(page.into_body(), 1 << 20)
        .await
        .unwrap();
    let html = String::from_utf8_lossy(&html);
    assert!(html.contains(r#"<script src="/webchat/widget.js""#));

    // The widget never turns text into HTML.
    let js = webcare_adapters_widget_source();
    assert!(!js.contains("innerHTML") && !js.contains("insertAdjacentHTML"));
    assert!(js.contains("textContent"));
    drop(server.stop);
}

fn webcare_adapters_widget_source() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/widget.js")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holding_many_chats_does_not_lock_out_other_visitors() {
    let server = start(WebChatConfig {
        max_per_address: 3,
        ..WebChatConfig::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(join(&server, None).await.0);
    }
    // The fourth from the same address is refused (429)…
    let refused = open_from("127.0.0.1", &server.base).await;
    let Err(error) = refused else {
        panic!("a fourth chat from one address is refused");
    };
    assert!(error.contains("429"), "{error}");
    // …while a visitor from another address gets a chat and an answer.
    let mut other = open_from("127.0.0.2", &server.base).await.unwrap();
    assert_eq!(next(&mut other).await["type"], "hello");
    assert_eq!(next(&mut other).await["type"], "transcript");
    other.send(message("q1", QUESTION)).await.unwrap();
    assert_eq!(next(&mut other).await["type"], "ack");
    // A closed chat frees its place.
    drop(held.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while open_from("127.0.0.1", &server.base).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the place was not freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(server.stop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_does_not_reset_the_message_limit() {
    let server = start(WebChatConfig {
        burst: 3,
        per_second: 0.01,
        address_burst: 5,
        address_per_second: 0.01,
        ..WebChatConfig::default()
    })
    .await;
    // Per conversation: three messages, then a new socket on the same conversation is still
    // out of messages.
    let (mut first, conversation, _) = join(&server, None).await;
    for i in 0..3 {
        first
            .send(message(&format!("m{i}"), "hallo"))
            .await
            .unwrap();
        acked(&mut first).await;
    }
    drop(first);
    let (mut again, _, _) = join(&server, Some(&conversation)).await;
    again.send(message("m3", "hallo")).await.unwrap();
    assert_eq!(closed(&mut again).await, Some(1008));

    // Per address: fresh conversations from the same address share its five.
    let (mut second, _, _) = join(&server, None).await;
    second.send(message("n0", "hallo")).await.unwrap();
    acked(&mut second).await;
    let (mut third, _, _) = join(&server, None).await;
    third.send(message("n1", "hallo")).await.unwrap();
    assert_eq!(closed(&mut third).await, Some(1008));
    // Another address is not affected.
    let mut other = open_from("127.0.0.2", &server.base).await.unwrap();
    assert_eq!(next(&mut other).await["type"], "hello");
    assert_eq!(next(&mut other).await["type"], "transcript");
    other.send(message("o1", QUESTION)).await.unwrap();
    acked(&mut other).await;
    drop(server.stop);
}

/// Reads frames (replies of earlier messages included) until an `ack`.
async fn acked(socket: &mut Socket) {
    loop {
        let frame = next(socket).await;
        match frame["type"].as_str() {
            Some("ack") => return,
            Some("reply") => continue,
            _ => panic!("expected an ack: {frame}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_transcript_is_sent_in_pages() {
    let server = start(WebChatConfig {
        page: 20,
        ..WebChatConfig::default()
    })
    .await;
    let conversation = "w0123456789abcdef0123456789abcdef";
    for n in 0..60 {
        let mut inbound = webcare_engine::Inbound::from_text(
            format!("{conversation}:m{n}"),
            ChannelKind::Webchat,
            format!("bericht {n}"),
            server.gateway.now(),
        );
        inbound.conversation = conversation.into();
        inbound.author = format!("visitor:{conversation}");
        server.gateway.accept(inbound).await.unwrap();
    }
    let url = format!("{}?conversation={conversation}", server.base);
    let mut socket = open(&url).await;
    assert_eq!(next(&mut socket).await["type"], "hello");
    // Replies of the 60 messages still on their way may arrive around the transcript.
    let transcript = loop {
        let frame = next(&mut socket).await;
        if frame["type"] == "transcript" {
            break frame;
        }
        assert_eq!(frame["type"], "reply", "{frame}");
    };
    let first_page = transcript["items"].as_array().unwrap().clone();
    // 60 messages and their replies: the last 20 lines, and a note that there are more.
    assert_eq!(first_page.len(), 20, "{transcript}");
    assert_eq!(transcript["earlier"], true);

    // Asking for earlier pages until there are no more gives the whole conversation, each
    // line once and in order.
    let mut lines = first_page;
    loop {
        let skip = lines.len();
        socket
            .send(Message::text(format!(
                r#"{{"type":"earlier","skip":{skip}}}"#
            )))
            .await
            .unwrap();
        let earlier = page(&mut socket).await;
        let mut older = earlier["items"].as_array().unwrap().clone();
        assert!(older.len() <= 20);
        older.extend(lines);
        lines = older;
        if earlier["more"] == false {
            break;
        }
    }
    let visitor: Vec<&str> = lines
        .iter()
        .filter(|i| i["from"] == "visitor")
        .map(|i| i["text"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..60).map(|n| format!("bericht {n}")).collect();
    assert_eq!(visitor, expected);
    drop(server.stop);
}

/// The next `earlier` frame (replies the outbox still pushes are skipped).
async fn page(socket: &mut Socket) -> serde_json::Value {
    loop {
        let frame = next(socket).await;
        if frame["type"] == "earlier" {
            return frame;
        }
        assert_eq!(frame["type"], "reply", "{frame}");
    }
}
