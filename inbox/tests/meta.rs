//! WhatsApp, Messenger and Instagram in the inbox, over plain HTTP on a virtual clock. The
//! customer service window: the escalation page says until when a free reply may be sent and
//! how a later one would go out, and an agent's reply the platform would never take is refused
//! in the reply form itself, with the reason and the agent's text kept, and never queued. And
//! the platform's delivery reports: delivered, read and failed (with Meta's code and title)
//! are shown on the reply they are about.

// A failed unwrap is a failed test, with its line.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use webcare_adapters::gateway::Gateway;
use webcare_engine::store::{ReceiptEvent, Role, User};
use webcare_engine::{ChannelKind, ManualClock};
use webcare_inbox::auth::hash_password;
use webcare_inbox::{Inbox, InboxConfig};

mod support;
use support::{hidden, local, serve, set_cookie};

const LEGAL: &str = "Ik maak bezwaar tegen de aanslag, mijn advocaat neemt contact op";

/// The inbox alone (no outbox worker: a queued reply stays pending, which is what is checked).
struct Service {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    gateway: Gateway,
    base: String,
    client: reqwest::Client,
}

impl Service {
    async fn start(start: DateTime<Utc>, reply_template: Option<&str>) -> Service {
        let (dir, gateway, clock) = support::gateway(start);
        let config = InboxConfig {
            reply_template: reply_template.map(str::to_owned),
            ..InboxConfig::default()
        };
        let inbox = Inbox::new(gateway.clone(), config, None);
        let base = serve(inbox.routes()).await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let s = Service {
            _dir: dir,
            clock,
            gateway,
            base,
            client,
        };
        let user = User {
            login: "anna".into(),
            name: "Anna".into(),
            role: Role::Agent,
            teams: vec!["webcare".into(), "legal".into()],
            password_hash: hash_password("anna-pw").unwrap(),
            created_at: start,
        };
        s.gateway
            .store(move |st| st.put_user(user, "test", start))
            .await
            .unwrap();
        s
    }

    /// A fresh session cookie for anna (sessions do not last a day on the virtual clock).
    async fn login(&self) -> String {
        let form = self
            .client
            .get(format!("{}/inbox/login", self.base))
            .send()
            .await
            .unwrap();
        let login_cookie = set_cookie(form.headers(), "webcare_login").unwrap();
        let csrf = hidden(&form.text().await.unwrap(), "csrf");
        let response = self
            .client
            .post(format!("{}/inbox/login", self.base))
            .header("cookie", format!("webcare_login={login_cookie}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("login", "anna"),
                ("password", "anna-pw"),
            ])
            .send()
            .await
            .unwrap();
        set_cookie(response.headers(), "webcare_session").unwrap()
    }

    async fn page(&self, session: &str, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", format!("webcare_session={session}"))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Posts the reply form of escalation `id` as a browser would: (status, page).
    async fn reply(&self, session: &str, id: u64, text: &str) -> (u16, String) {
        self.act(session, id, "reply", text).await
    }

    /// Posts the form of `action` on escalation `id` as a browser would: (status, page).
    async fn act(&self, session: &str, id: u64, action: &str, text: &str) -> (u16, String) {
        let path = format!("/inbox/escalations/{id}");
        let (_, page) = self.page(session, &path).await;
        let csrf = hidden(&page, "csrf");
        let response = self
            .client
            .post(format!("{}{path}/{action}", self.base))
            .header("cookie", format!("webcare_session={session}"))
            .form(&[("csrf", csrf.as_str()), ("text", text)])
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// A customer's message on `channel`, escalated to a person; its escalation id.
    async fn escalated(&self, channel: ChannelKind, at: DateTime<Utc>) -> u64 {
        let message = webcare_engine::Inbound {
            id: format!("{channel}.W1"),
            channel,
            conversation: "1065550100:31612345678".into(),
            author: "31612345678".into(),
            text: LEGAL.into(),
            received_at: at,
            metadata: Default::default(),
        };
        let receipt = self.gateway.accept(message).await.unwrap();
        receipt.escalation.unwrap()
    }

    async fn replies(&self, channel: ChannelKind) -> usize {
        self.gateway
            .store(move |s| s.conversation_outbox(channel, "1065550100:31612345678"))
            .await
            .unwrap()
            .len()
    }
}

/// The reason a reply is refused, as the reply form shows it.
fn refused_reply(page: &str) -> &str {
    page.split("id=\"reply-refused\"")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no refusal in {page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whatsapp_reply_after_the_window_without_a_template_is_refused_in_the_form() {
    let monday = local(2026, 11, 30, 10, 0);
    let s = Service::start(monday, None).await;
    let id = s.escalated(ChannelKind::Whatsapp, monday).await;
    let path = format!("/inbox/escalations/{id}");
    let session = s.login().await;
    let (status, page) = s.page(&session, &path).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Reply window"), "{page}");
    assert!(page.contains("open until 2026-12-01 10:00 CET"), "{page}");
    assert!(!page.contains("id=\"reply-refused\""), "{page}");
    let before = s.replies(ChannelKind::Whatsapp).await;

    // A day and an hour later the window is closed: the page says so before anyone writes.
    s.clock.advance(chrono::Duration::hours(25));
    let session = s.login().await;
    let (_, page) = s.page(&session, &path).await;
    assert!(
        page.contains(
            "closed since 2026-12-01 10:00 CET: a reply is refused until the customer writes again"
        ),
        "{page}"
    );
    assert!(page.contains("id=\"reply-refused\""), "{page}");

    // The reply is refused in the form with the reason, in the rulebook's time zone; the text
    // stays in the box. The refusal answers with a redirect to the page (post/redirect/get),
    // so reloading that page shows it again and never sends the reply again.
    let text = "Wij hebben uw bezwaar ontvangen en nemen het in behandeling.";
    let (status, _) = s.reply(&session, id, text).await;
    assert_eq!(status, 303);
    for _reload in 0..2 {
        let (status, page) = s.page(&session, &path).await;
        assert_eq!(status, 200, "{page}");
        let refused = refused_reply(&page);
        assert!(refused.contains("Not sent"), "{refused}");
        assert!(
            refused.contains("the window closed at 2026-12-01 10:00 CET"),
            "{refused}"
        );
        assert!(!refused.contains("UTC"), "{refused}");
        assert!(refused.contains("[meta] reply_template"), "{refused}");
        assert!(page.contains(&format!(">{text}</textarea>")), "{page}");
    }

    // Ten minutes on, the unsent text is gone (it is no record to keep); the page still says
    // why a reply is refused, worked out again from the window.
    s.clock.advance(chrono::Duration::minutes(11));
    let (_, page) = s.page(&session, &path).await;
    assert!(!page.contains(text), "{page}");
    assert!(page.contains("id=\"reply-refused\""), "{page}");

    // On Anna's Dutch pages the refusal is Dutch too, and so is a colleague's claim.
    let (status, _) = s.page(&session, "/inbox/language?to=nl").await;
    assert_eq!(status, 303);
    let (_, page) = s.page(&session, &path).await;
    let refused = refused_reply(&page);
    assert!(
        refused.contains("buiten het klantenservicevenster van 24 uur"),
        "{refused}"
    );
    assert!(
        refused.contains("het venster sloot op 2026-12-01 10:00 CET"),
        "{refused}"
    );
    assert!(!refused.contains("window"), "{refused}");
    let now = s.gateway.now();
    s.gateway
        .store(move |st| st.claim_escalation(id, "bram", now))
        .await
        .unwrap();
    let (status, _) = s.act(&session, id, "claim", "").await;
    assert_eq!(status, 303);
    let (_, page) = s.page(&session, &path).await;
    assert!(
        page.contains(&format!("Escalatie {id} is al opgepakt door bram.")),
        "{page}"
    );
    let (status, _) = s.act(&session, id, "note", " ").await;
    assert_eq!(status, 303);
    let (_, page) = s.page(&session, &path).await;
    assert!(page.contains("De notitie is leeg."), "{page}");

    // Nothing was queued: no dead letter later, no reply that looks sent.
    assert_eq!(s.replies(ChannelKind::Whatsapp).await, before);

    // The JSON API refuses it the same way.
    let token = webcare_inbox::auth::new_api_token();
    let digest = webcare_inbox::auth::token_digest(&token);
    let now = s.gateway.now();
    s.gateway
        .store(move |st| st.add_api_token("anna", digest, now))
        .await
        .unwrap();
    let response = s
        .client
        .post(format!("{}/api/v1/escalations/{id}/reply", s.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "text": text }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let body = response.text().await.unwrap();
    assert!(body.contains("reply_template"), "{body}");
    assert_eq!(s.replies(ChannelKind::Whatsapp).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_template_or_the_human_agent_tag_a_late_reply_is_queued() {
    let monday = local(2026, 11, 30, 10, 0);
    let s = Service::start(monday, Some("antwoord_gemeente")).await;
    let whatsapp = s.escalated(ChannelKind::Whatsapp, monday).await;
    let messenger = s.escalated(ChannelKind::Messenger, monday).await;
    // The bot's holding replies, queued with the messages.
    let holding = s.replies(ChannelKind::Whatsapp).await;
    assert_eq!(s.replies(ChannelKind::Messenger).await, holding);
    s.clock.advance(chrono::Duration::hours(25));
    let session = s.login().await;

    let (_, page) = s
        .page(&session, &format!("/inbox/escalations/{whatsapp}"))
        .await;
    assert!(
        page.contains("a reply goes out as the approved template `antwoord_gemeente`"),
        "{page}"
    );
    assert!(!page.contains("id=\"reply-refused\""), "{page}");
    let (status, page) = s
        .reply(&session, whatsapp, "Uw bezwaar is ontvangen.")
        .await;
    assert_eq!(status, 303, "{page}");
    assert_eq!(s.replies(ChannelKind::Whatsapp).await, holding + 1);

    // Messenger: tagged as a person's reply for 7 days after the customer's message, then
    // refused.
    let path = format!("/inbox/escalations/{messenger}");
    let (_, page) = s.page(&session, &path).await;
    assert!(
        page.contains("tagged as a human agent's until 2026-12-07 10:00 CET"),
        "{page}"
    );
    s.clock.advance(chrono::Duration::days(7));
    let session = s.login().await;
    let (status, _) = s.reply(&session, messenger, "Nog een vraag?").await;
    assert_eq!(status, 303);
    let (_, page) = s.page(&session, &path).await;
    assert!(
        refused_reply(&page).contains("the 7 days in which a person may still answer are over"),
        "{page}"
    );
    assert_eq!(s.replies(ChannelKind::Messenger).await, holding);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_read_and_failed_reports_are_shown_on_their_reply() {
    let monday = local(2026, 11, 30, 10, 0);
    let s = Service::start(monday, None).await;
    let id = s.escalated(ChannelKind::Whatsapp, monday).await;
    let session = s.login().await;
    let text = "Wij bellen u vandaag nog over uw bezwaar.";
    let (status, page) = s.reply(&session, id, text).await;
    assert_eq!(status, 303, "{page}");
    let replies = s
        .gateway
        .store(|st| st.conversation_outbox(ChannelKind::Whatsapp, "1065550100:31612345678"))
        .await
        .unwrap();
    let (holding, agent) = (replies[0].id, replies[1].id);
    let minute = |m| monday + chrono::Duration::minutes(m);
    let reports = [
        (holding, ReceiptEvent::Delivered, minute(1)),
        (holding, ReceiptEvent::Read, minute(2)),
        (
            agent,
            ReceiptEvent::Failed {
                code: 131026,
                title: "Message undeliverable".into(),
            },
            minute(3),
        ),
    ];
    s.gateway
        .store(move |st| {
            st.outbox_sent(holding, monday)?;
            st.outbox_sent(agent, monday)
        })
        .await
        .unwrap();
    for (outbox, event, at) in reports {
        s.gateway
            .store(move |st| st.outbox_receipt(outbox, event, at))
            .await
            .unwrap();
    }

    let (_, page) = s.page(&session, &format!("/inbox/escalations/{id}")).await;
    assert!(page.contains("delivered 2026-11-30 10:01 CET"), "{page}");
    assert!(page.contains("read 2026-11-30 10:02 CET"), "{page}");
    let agent_line = page.split(text).next().unwrap();
    let agent_line = &agent_line[agent_line.rfind("<li").unwrap()..];
    assert!(
        agent_line.contains(
            "failed on WhatsApp (2026-11-30 10:03 CET): 131026 Message undeliverable; the customer did not get it"
        ),
        "{agent_line}"
    );

    // The JSON API has the same reports.
    let token = webcare_inbox::auth::new_api_token();
    let digest = webcare_inbox::auth::token_digest(&token);
    s.gateway
        .store(move |st| st.add_api_token("anna", digest, monday))
        .await
        .unwrap();
    let json: serde_json::Value = s
        .client
        .get(format!("{}/api/v1/escalations/{id}", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        json["replies"][1]["receipt"]["failed"]["code"], 131026,
        "{json}"
    );
    assert!(
        json["replies"][0]["receipt"]["read_at"].is_string(),
        "{json}"
    );
}

/// A colleague resolves the case while Anna writes: her reply is refused, and though a
/// resolved case has no reply form, what she wrote and why it was not sent stay on the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_refused_because_a_colleague_resolved_the_case_keeps_its_text() {
    let monday = local(2026, 11, 30, 10, 0);
    let s = Service::start(monday, None).await;
    let id = s.escalated(ChannelKind::Whatsapp, monday).await;
    let path = format!("/inbox/escalations/{id}");
    let session = s.login().await;
    let (_, page) = s.page(&session, &path).await;
    let csrf = hidden(&page, "csrf");
    let before = s.replies(ChannelKind::Whatsapp).await;

    s.gateway
        .store(move |st| st.resolve_escalation(id, "bob", monday))
        .await
        .unwrap();
    let text = "Uw bezwaar is ontvangen; u hoort binnen zes weken van ons.";
    let response = s
        .client
        .post(format!("{}{path}/reply", s.base))
        .header("cookie", format!("webcare_session={session}"))
        .form(&[("csrf", csrf.as_str()), ("text", text)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);

    let (status, page) = s.page(&session, &path).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        refused_reply(&page).contains(&format!("Escalation {id} is already resolved")),
        "{page}"
    );
    assert!(page.contains("Your reply, not sent"), "{page}");
    assert!(page.contains(&format!(">{text}</textarea>")), "{page}");
    assert!(!page.contains("id=\"send-reply\""), "{page}");
    assert_eq!(s.replies(ChannelKind::Whatsapp).await, before);
}
