//! The inbox in a real headless Chromium (Debian's `chromium` and `chromium-driver`; nothing is
//! downloaded at run time), served in process on a virtual clock: an escalation that arrives
//! while the queue is open appears in it without a reload (server-sent events the browser
//! accepts), the filters and the search narrow the queue, every keyboard shortcut works it, a
//! Dutch browser gets a Dutch inbox with local times and the team's canned replies, a person's
//! language follows them to another browser, and a follow-up or a reopening notifies.

// A failed unwrap is a failed test, with its line.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use tokio::sync::watch;
use webcare_adapters::gateway::Gateway;
use webcare_engine::store::{Role, User};
use webcare_engine::{ChannelKind, Inbound};
use webcare_inbox::auth::hash_password;
use webcare_inbox::sla::SlaTimer;
use webcare_inbox::{Inbox, InboxConfig};

mod support;
use support::{local, serve};

const COMPLAINT: &str = "Ik heb een klacht over de afvalinzameling, al drie weken niet opgehaald!";
const AGAIN: &str = "Weer een klacht: de afvalinzameling is niet geweest in de Dorpsstraat";
const BALIE: &str = "Ik wil een klacht indienen over de behandeling aan de balie";
const PRESS: &str = "Ik ben journalist bij het Dagblad en heb een vraag voor de woordvoerder";

/// The inbox as `webcare run` composes it (store, SLA timer that announces arrivals, pages),
/// on a manual clock.
struct Service {
    _dir: tempfile::TempDir,
    gateway: Gateway,
    inbox: Inbox,
    base: String,
    _stop: watch::Sender<bool>,
}

impl Service {
    async fn start() -> Service {
        let (dir, gateway, _clock) = support::gateway(local(2026, 11, 30, 10, 0));
        let inbox = Inbox::new(gateway.clone(), InboxConfig::default(), None);
        let (stop, stopped) = watch::channel(false);
        let mut stopped = stopped.clone();
        tokio::spawn(
            SlaTimer::new(inbox.clone(), Duration::from_millis(50)).run(async move {
                let _ = stopped.wait_for(|s| *s).await;
            }),
        );
        let base = serve(inbox.routes()).await;
        Service {
            _dir: dir,
            gateway,
            inbox,
            base,
            _stop: stop,
        }
    }

    async fn user(&self, login: &str, name: &str, role: Role, teams: &[&str]) {
        let now = self.gateway.now();
        let user = User {
            login: login.into(),
            name: name.into(),
            role,
            teams: teams.iter().map(|t| (*t).to_owned()).collect(),
            password_hash: hash_password("pw-of-the-test").unwrap(),
            created_at: now,
        };
        self.gateway
            .store(move |s| s.put_user(user, "test", now).map(|_| ()))
            .await
            .unwrap();
    }

    /// A customer's message arrives; the escalation it opened.
    async fn arrives(&self, id: &str, channel: ChannelKind, author: &str, text: &str) -> u64 {
        self.arrives_in(id, &format!("conv-{id}"), channel, author, text)
            .await
    }

    /// A customer's message arrives in `conversation`; the escalation it opened or joined.
    async fn arrives_in(
        &self,
        id: &str,
        conversation: &str,
        channel: ChannelKind,
        author: &str,
        text: &str,
    ) -> u64 {
        let mut metadata = std::collections::BTreeMap::new();
        metadata.insert("display_name".to_owned(), format!("Klant {author}"));
        let receipt = self
            .gateway
            .accept(Inbound {
                id: id.into(),
                channel,
                conversation: conversation.into(),
                author: author.into(),
                text: text.into(),
                received_at: self.gateway.now(),
                metadata,
            })
            .await
            .unwrap();
        receipt.escalation.unwrap()
    }
}

/// A chromedriver child on a free port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

fn binary(env: &str, candidates: &[&str]) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("none of {candidates:?} exists; set {env}"))
}

impl Driver {
    fn start() -> Driver {
        let chromedriver = binary(
            "WEBCARE_CHROMEDRIVER",
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium whose browser asks for `accept_language`.
async fn browser(driver: &Driver, profile: &Path, accept_language: &str) -> Client {
    let chromium = binary(
        "WEBCARE_CHROMIUM",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    );
    let args = [
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--no-first-run".to_owned(),
        "--window-size=1400,1000".to_owned(),
        format!("--accept-lang={accept_language}"),
        format!("--lang={accept_language}"),
        format!("--user-data-dir={}", profile.display()),
    ];
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": args,
            "prefs": { "intl.accept_languages": accept_language },
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap()
}

async fn log_in(client: &Client, base: &str, login: &str) {
    client.goto(&format!("{base}/inbox/login")).await.unwrap();
    client
        .find(Locator::Id("login"))
        .await
        .unwrap()
        .send_keys(login)
        .await
        .unwrap();
    client
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("pw-of-the-test")
        .await
        .unwrap();
    client
        .find(Locator::Id("login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("queues"))
        .await
        .unwrap();
}

/// Runs `script` (which returns a value) until it returns `expected`, for at most 20 s.
async fn eventually(client: &Client, script: &str, expected: serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = client.execute(script, vec![]).await.unwrap();
        if got == expected {
            return;
        }
        if Instant::now() >= deadline {
            let state = client
                .execute(
                    "return JSON.stringify(document.documentElement.dataset)",
                    vec![],
                )
                .await
                .unwrap();
            panic!("`{script}` is {got}, not {expected}; the page's live state: {state}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn js(client: &Client, script: &str) -> serde_json::Value {
    client.execute(script, vec![]).await.unwrap()
}

async fn rows(client: &Client) -> Vec<String> {
    let value = js(
        client,
        "return Array.from(document.querySelectorAll('tr.escalation')).map(r => r.id)",
    )
    .await;
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

async fn text(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_that_arrives_while_the_queue_is_open_appears_without_a_reload() {
    let s = Service::start().await;
    s.user("anna", "Anna", Role::Agent, &["webcare"]).await;
    let first = s.arrives("m1", ChannelKind::Http, "ann", COMPLAINT).await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path(), "en-US,en").await;
    log_in(&client, &s.base, "anna").await;
    assert_eq!(rows(&client).await, [format!("esc-{first}")]);
    assert_eq!(
        js(&client, "return document.title").await,
        "(1) Queues · webcare inbox"
    );
    // A mark on this page: a reload would lose it.
    js(&client, "window.__samePage = 42; return true").await;
    // The stream is open before the next escalation arrives.
    eventually(
        &client,
        "return document.documentElement.dataset.live || ''",
        serde_json::json!("on"),
    )
    .await;

    // A second escalation arrives while the queue is open: it appears, and the title counts it.
    let second = s.arrives("m2", ChannelKind::Whatsapp, "bob", AGAIN).await;
    eventually(
        &client,
        "return document.querySelectorAll('tr.escalation').length",
        serde_json::json!(2),
    )
    .await;
    let row = text(&client, &format!("#esc-{second}")).await;
    assert!(row.contains("Dorpsstraat"), "the preview: {row}");
    assert!(row.contains("Klant bob"), "the customer: {row}");
    assert!(row.contains("WhatsApp"), "the channel: {row}");
    eventually(
        &client,
        "return document.title",
        serde_json::json!("(2) Queues · webcare inbox"),
    )
    .await;
    assert_eq!(
        js(&client, "return window.__samePage").await,
        serde_json::json!(42),
        "no reload"
    );

    // A colleague claims the first one: the open queue shows it, still without a reload.
    let now = s.gateway.now();
    s.gateway
        .store(move |st| st.claim_escalation(first, "bram", now))
        .await
        .unwrap();
    s.inbox.changed();
    eventually(
        &client,
        &format!("return document.querySelector('#esc-{first} td.status').textContent"),
        serde_json::json!("claimed by bram"),
    )
    .await;
    eventually(
        &client,
        "return document.title",
        serde_json::json!("(1) Queues · webcare inbox"),
    )
    .await;
    assert_eq!(
        js(&client, "return window.__samePage").await,
        serde_json::json!(42)
    );
    // Desktop notifications are offered, as a choice.
    assert_eq!(
        js(
            &client,
            "return !!window.Notification && !document.getElementById('notify-toggle').hidden"
        )
        .await,
        serde_json::json!(true)
    );
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_search_narrow_the_queue() {
    let s = Service::start().await;
    s.user("lena", "Lena", Role::Lead, &[]).await;
    let waste = s.arrives("f1", ChannelKind::Http, "ann", COMPLAINT).await;
    let balie = s.arrives("f2", ChannelKind::Whatsapp, "bob", BALIE).await;
    let press = s.arrives("f3", ChannelKind::Http, "cas", PRESS).await;
    let now = s.gateway.now();
    s.gateway
        .store(move |st| st.claim_escalation(waste, "lena", now))
        .await
        .unwrap();

    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path(), "en-US,en").await;
    log_in(&client, &s.base, "lena").await;
    let mut all = rows(&client).await;
    all.sort();
    let mut expected = vec![
        format!("esc-{waste}"),
        format!("esc-{balie}"),
        format!("esc-{press}"),
    ];
    expected.sort();
    assert_eq!(all, expected);
    // The reason in words, not the matching's internals.
    let reason = text(&client, &format!("#esc-{waste} td.reason")).await;
    assert!(reason.starts_with("Complaint"), "{reason}");
    assert!(!reason.contains("recognised"), "{reason}");

    // Search over the messages' text, typed into the form.
    let search = client.find(Locator::Id("search")).await.unwrap();
    search.send_keys("BALIE").await.unwrap();
    client
        .find(Locator::Id("apply-filters"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        &client,
        "return location.search.includes('q=BALIE')",
        serde_json::json!(true),
    )
    .await;
    assert_eq!(rows(&client).await, [format!("esc-{balie}")]);

    // Each filter, as a link a colleague could be sent.
    for (query, expected) in [
        ("team=communications", vec![press]),
        ("channel=whatsapp", vec![balie]),
        ("mine=1", vec![waste]),
        ("status=claimed", vec![waste]),
        ("unassigned=1&channel=http", vec![press]),
        ("priority=urgent", vec![]),
        ("q=afvalinzameling+drie", vec![waste]),
        ("q=klant+cas", vec![press]),
    ] {
        client
            .goto(&format!("{}/inbox?{query}", s.base))
            .await
            .unwrap();
        let mut want: Vec<String> = expected.iter().map(|id| format!("esc-{id}")).collect();
        want.sort();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut got = rows(&client).await;
            got.sort();
            if got == want {
                break;
            }
            assert!(Instant::now() < deadline, "{query}: {got:?}, not {want:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if expected.is_empty() {
            let nothing = text(&client, "#nothing").await;
            assert_eq!(nothing, "No escalation matches these filters.");
        }
    }

    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dutch_browser_gets_a_dutch_inbox_with_local_times_and_canned_replies() {
    let s = Service::start().await;
    s.user("anna", "Anna", Role::Agent, &["webcare"]).await;
    let id = s
        .arrives("d1", ChannelKind::Whatsapp, "ann", COMPLAINT)
        .await;
    // The same customer wrote before, on another channel.
    let earlier = s.arrives("d0", ChannelKind::Http, "ann", BALIE).await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path(), "nl-NL,nl").await;
    log_in(&client, &s.base, "anna").await;

    // The queue in Dutch, times in the rulebook's zone, named.
    assert_eq!(text(&client, "main h1").await, "Wachtrijen");
    assert_eq!(
        js(&client, "return document.documentElement.lang").await,
        "nl"
    );
    assert!(
        js(&client, "return document.title")
            .await
            .as_str()
            .unwrap()
            .ends_with("Wachtrijen · webcare inbox")
    );
    assert_eq!(
        text(&client, "#timezone").await,
        "Tijden in Europe/Amsterdam"
    );
    assert_eq!(text(&client, "header .who").await, "Anna (medewerker)");
    let header = text(&client, "table.queue thead").await;
    for word in [
        "Prioriteit",
        "Kanaal",
        "Klant",
        "Bericht",
        "Reden",
        "SLA-deadline",
    ] {
        assert!(header.contains(word), "{word} in {header}");
    }
    let row = text(&client, &format!("#esc-{id}")).await;
    assert!(row.contains("Klacht"), "{row}");
    assert!(row.contains("Oppakken"), "{row}");
    let due = text(&client, &format!("#esc-{id} time")).await;
    assert!(due.ends_with(" CET"), "local time: {due}");
    let summary = text(&client, "#team-webcare").await;
    assert!(summary.contains("het webcareteam"), "{summary}");

    // The escalation: conversation and reply box first, the customer's other conversation
    // beside them, the why one click away.
    client
        .goto(&format!("{}/inbox/escalations/{id}", s.base))
        .await
        .unwrap();
    let title = text(&client, "main h1").await;
    assert!(title.starts_with(&format!("Escalatie #{id} ")), "{title}");
    assert_eq!(text(&client, "#send-reply").await, "Antwoord versturen");
    let others = text(&client, "#others").await;
    assert!(
        others.contains("Andere gesprekken van deze klant"),
        "{others}"
    );
    assert!(
        others.contains(&format!("Escalatie #{earlier}")),
        "{others}"
    );
    let conversation_top = js(
        &client,
        "return document.getElementById('reply-text').getBoundingClientRect().top",
    )
    .await
    .as_f64()
    .unwrap();
    assert!(
        conversation_top < 900.0,
        "the reply box is in view: {conversation_top}"
    );
    let why_open = js(
        &client,
        "return document.querySelector('#why details').open",
    )
    .await;
    assert_eq!(why_open, serde_json::json!(false), "the why is collapsed");
    let rules_visible = js(
        &client,
        "return document.getElementById('rules').checkVisibility()",
    )
    .await;
    assert_eq!(rules_visible, serde_json::json!(false));
    client
        .find(Locator::Css("#why summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(text(&client, "#rules").await.contains("escalation.rhai:"));

    // The team's canned replies, titled in Dutch, fill the box for this customer.
    let titles = js(
        &client,
        "return Array.from(document.querySelectorAll('#canned option')).map(o => o.textContent)",
    )
    .await;
    assert!(
        titles
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "Excuses bij een klacht"),
        "{titles}"
    );
    js(
        &client,
        "const s = document.getElementById('canned'); s.value = 'looking_into_it'; s.dispatchEvent(new Event('change', {bubbles: true})); return true",
    )
    .await;
    let filled = js(
        &client,
        "return document.getElementById('reply-text').value",
    )
    .await;
    let filled = filled.as_str().unwrap();
    assert!(filled.starts_with("Beste Klant ann, bedankt"), "{filled}");
    assert!(filled.ends_with("Groet, Anna"), "{filled}");
    assert!(!filled.contains('{'), "every placeholder filled: {filled}");

    // The person's own choice beats the browser's, and is kept.
    client
        .find(Locator::Id("lang-en"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        &client,
        "return document.getElementById('send-reply') && document.getElementById('send-reply').textContent",
        serde_json::json!("Send reply"),
    )
    .await;
    client.goto(&format!("{}/inbox", s.base)).await.unwrap();
    assert_eq!(text(&client, "main h1").await, "Queues");
    assert_eq!(text(&client, "header .who").await, "Anna (agent)");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_language_follows_them_to_another_browser() {
    let s = Service::start().await;
    s.user("anna", "Anna", Role::Agent, &["webcare"]).await;
    s.user("bram", "Bram", Role::Agent, &["webcare"]).await;
    let driver = Driver::start();
    let (office, laptop) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    // At the office Anna's browser asks for English; she chooses Dutch.
    let first = browser(&driver, office.path(), "en-US,en").await;
    log_in(&first, &s.base, "anna").await;
    assert_eq!(text(&first, "main h1").await, "Queues");
    first
        .find(Locator::Id("lang-nl"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        &first,
        "return document.querySelector('main h1').textContent",
        serde_json::json!("Wachtrijen"),
    )
    .await;
    first.close().await.unwrap();

    // On another, English browser that never chose, her inbox is Dutch at once.
    let second = browser(&driver, laptop.path(), "en-US,en").await;
    log_in(&second, &s.base, "anna").await;
    assert_eq!(text(&second, "main h1").await, "Wachtrijen");
    // Her choice is hers: a colleague who never chose gets his browser's language there.
    second
        .find(Locator::Css("form.inline button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    second
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("login"))
        .await
        .unwrap();
    log_in(&second, &s.base, "bram").await;
    assert_eq!(text(&second, "main h1").await, "Queues");
    second.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_and_a_reopening_update_the_open_queue_and_notify_without_customer_text() {
    let s = Service::start().await;
    s.user("anna", "Anna", Role::Agent, &["webcare"]).await;
    let id = s.arrives("n1", ChannelKind::Http, "ann", COMPLAINT).await;
    let now = s.gateway.now();
    s.gateway
        .store(move |st| st.reply_to_escalation(id, "anna", "We kijken ernaar.", now))
        .await
        .unwrap();
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path(), "nl-NL,nl").await;
    log_in(&client, &s.base, "anna").await;
    assert_eq!(rows(&client).await, [format!("esc-{id}")]);
    // Notifications on: the browser's own Notification, recorded so the test sees each one
    // (headless Chromium shows none).
    js(
        &client,
        "window.__shown = []; \
         window.Notification = function (title, options) { window.__shown.push([title, options.body]); }; \
         window.Notification.permission = 'granted'; \
         localStorage.setItem('webcare-notify', 'on'); return true",
    )
    .await;
    eventually(
        &client,
        "return document.documentElement.dataset.live || ''",
        serde_json::json!("on"),
    )
    .await;

    // The customer writes again after the answer: the open queue flags it and one
    // notification says so, without the customer's words.
    s.arrives_in("n2", "conv-n1", ChannelKind::Http, "ann", AGAIN)
        .await;
    eventually(
        &client,
        &format!("return !!document.querySelector('#esc-{id} .waiting')"),
        serde_json::json!(true),
    )
    .await;
    eventually(
        &client,
        "return window.__shown.length",
        serde_json::json!(1),
    )
    .await;
    let shown = js(&client, "return window.__shown[0]").await;
    assert_eq!(shown[0], format!("#{id} · webcare"), "{shown}");
    assert!(
        shown[1]
            .as_str()
            .unwrap()
            .ends_with(" · de klant schreef opnieuw"),
        "{shown}"
    );

    // Resolved, it leaves the queue; the customer writes once more and it comes back reopened,
    // with a notification of its own.
    let now = s.gateway.now();
    s.gateway
        .store(move |st| st.resolve_escalation(id, "anna", now))
        .await
        .unwrap();
    s.inbox.changed();
    eventually(
        &client,
        "return document.querySelectorAll('tr.escalation').length",
        serde_json::json!(0),
    )
    .await;
    let again = s
        .arrives_in("n3", "conv-n1", ChannelKind::Http, "ann", COMPLAINT)
        .await;
    assert_eq!(again, id, "the same escalation reopens");
    eventually(
        &client,
        "return window.__shown.length",
        serde_json::json!(2),
    )
    .await;
    let shown = js(&client, "return window.__shown[1]").await;
    assert_eq!(shown[0], format!("#{id} · webcare"), "{shown}");
    assert!(
        shown[1].as_str().unwrap().ends_with(" · heropend"),
        "{shown}"
    );
    let all = js(&client, "return JSON.stringify(window.__shown)").await;
    for words in ["afvalinzameling", "Dorpsstraat", "klacht"] {
        assert!(!all.as_str().unwrap().contains(words), "{all}");
    }
    client.close().await.unwrap();
}

/// Presses `key` on the page, as a person would (not in a text field).
async fn key(client: &Client, key: &str) {
    client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys(key)
        .await
        .unwrap();
}

async fn selected(client: &Client) -> serde_json::Value {
    js(
        client,
        "const r = document.querySelector('tr.escalation.selected'); return r ? r.id : null",
    )
    .await
}

/// Every shortcut the queue documents (j k o c r e n /), each checked by what it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_keyboard_shortcut_works_the_queue_and_an_escalation() {
    let s = Service::start().await;
    s.user("lena", "Lena", Role::Lead, &[]).await;
    s.arrives("k1", ChannelKind::Http, "ann", COMPLAINT).await;
    s.arrives("k2", ChannelKind::Whatsapp, "bob", BALIE).await;
    s.arrives("k3", ChannelKind::Http, "cas", PRESS).await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path(), "en-US,en").await;
    log_in(&client, &s.base, "lena").await;
    let order = rows(&client).await;
    assert_eq!(order.len(), 3);
    let id_of = |row: &str| row.trim_start_matches("esc-").parse::<u64>().unwrap();

    // `/` goes to the search box.
    key(&client, "/").await;
    eventually(
        &client,
        "return document.activeElement.id",
        serde_json::json!("search"),
    )
    .await;
    js(&client, "document.activeElement.blur(); return true").await;

    // `n` selects the first row, `j` and `k` move down and up, `n` moves on.
    key(&client, "n").await;
    assert_eq!(selected(&client).await, serde_json::json!(order[0]));
    key(&client, "j").await;
    assert_eq!(selected(&client).await, serde_json::json!(order[1]));
    key(&client, "k").await;
    assert_eq!(selected(&client).await, serde_json::json!(order[0]));
    key(&client, "n").await;
    assert_eq!(selected(&client).await, serde_json::json!(order[1]));
    key(&client, "k").await;
    assert_eq!(selected(&client).await, serde_json::json!(order[0]));

    // `c` claims the selected row, which opens it.
    let first = id_of(&order[0]);
    key(&client, "c").await;
    eventually(
        &client,
        "return location.pathname",
        serde_json::json!(format!("/inbox/escalations/{first}")),
    )
    .await;
    assert_eq!(text(&client, "#status").await, "claimed by lena");

    // `r` goes to the reply box.
    key(&client, "r").await;
    eventually(
        &client,
        "return document.activeElement.id",
        serde_json::json!("reply-text"),
    )
    .await;
    js(&client, "document.activeElement.blur(); return true").await;

    // `n` opens the next escalation waiting in the queues, another one.
    key(&client, "n").await;
    eventually(
        &client,
        &format!("return location.pathname !== '/inbox/escalations/{first}' && !!document.getElementById('claim')"),
        serde_json::json!(true),
    )
    .await;
    let path = js(&client, "return location.pathname").await;
    let next: u64 = path
        .as_str()
        .unwrap()
        .trim_start_matches("/inbox/escalations/")
        .parse()
        .unwrap();
    assert!(order.contains(&format!("esc-{next}")), "{next}");

    // `c` on the escalation page claims it.
    key(&client, "c").await;
    eventually(
        &client,
        "return (document.getElementById('status') || {}).textContent",
        serde_json::json!("claimed by lena"),
    )
    .await;

    // `e` resolves it and goes back to the queue, where it is gone.
    key(&client, "e").await;
    eventually(
        &client,
        "return location.pathname",
        serde_json::json!("/inbox"),
    )
    .await;
    let resolved = s
        .gateway
        .store(move |st| st.escalation(next))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            resolved.status,
            webcare_engine::store::EscalationStatus::Resolved { .. }
        ),
        "{:?}",
        resolved.status
    );
    assert!(!rows(&client).await.contains(&format!("esc-{next}")));

    // `o` opens the selected row.
    key(&client, "j").await;
    let row = selected(&client).await;
    let row = row.as_str().unwrap().to_owned();
    key(&client, "o").await;
    eventually(
        &client,
        "return location.pathname",
        serde_json::json!(format!("/inbox/escalations/{}", id_of(&row))),
    )
    .await;
    client.close().await.unwrap();
}
