//! Logging in to the inbox under attack (issue 15): parallel wrong passwords are counted before
//! they are checked, an attacker cannot lock a colleague out from elsewhere, a megabyte login
//! name does not grow the audit log, and a session ends when its user's password, role or
//! existence changes.

// A failed unwrap is a failed test, with its line.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use webcare_adapters::gateway::Gateway;
use webcare_engine::store::{Role, User};
use webcare_inbox::auth::hash_password;
use webcare_inbox::{Inbox, InboxConfig};

mod support;
use support::{hidden, serve, set_cookie};

struct Fixture {
    _dir: tempfile::TempDir,
    gateway: Gateway,
    base: String,
}

async fn start() -> Fixture {
    let (dir, gateway, _clock) =
        support::gateway(Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap());
    let inbox = Inbox::new(gateway.clone(), InboxConfig::default(), None);
    let base = serve(inbox.routes()).await;
    Fixture {
        _dir: dir,
        gateway,
        base,
    }
}

impl Fixture {
    async fn put_user(&self, login: &str, role: Role, password: &str) {
        let user = User {
            login: login.into(),
            name: login.to_uppercase(),
            role,
            teams: vec!["webcare".into()],
            password_hash: hash_password(password).unwrap(),
            created_at: self.gateway.now(),
        };
        let now = self.gateway.now();
        self.gateway
            .store(move |s| s.put_user(user, "test", now).map(|_| ()))
            .await
            .unwrap();
    }

    /// Logs in from `from` (a loopback address); the status and the session cookie.
    async fn login(&self, from: &str, login: &str, password: &str) -> (u16, Option<String>) {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(from.parse::<IpAddr>().unwrap())
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
        (status, set_cookie(response.headers(), "webcare_session"))
    }

    /// A fresh session of Anna's.
    async fn session(&self) -> String {
        let (status, session) = self.login("127.0.0.1", "anna", "anna-passphrase-1").await;
        assert_eq!(status, 303);
        session.unwrap()
    }

    /// The queue page with a session cookie: 200, or 303 to the login page.
    async fn inbox_page(&self, session: &str) -> u16 {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{}/inbox", self.base))
            .header("cookie", format!("webcare_session={session}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_passwords_are_counted_before_they_are_checked() {
    let f = Arc::new(start().await);
    f.put_user("anna", Role::Agent, "anna-passphrase-1").await;
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let f = Arc::clone(&f);
            tokio::spawn(async move { f.login("127.0.0.1", "anna", &format!("guess-{i}")).await.0 })
        })
        .collect();
    let mut checked = 0;
    for guess in guesses {
        match guess.await.unwrap() {
            401 => checked += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    // Five wrong passwords per login and address are checked; the rest wait unchecked.
    assert_eq!(checked, 5, "passwords actually checked");

    // Anna at her own address is not locked out by the attacker's failures.
    let (status, session) = f.login("127.0.0.2", "anna", "anna-passphrase-1").await;
    assert_eq!(status, 303);
    assert!(session.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_login_name_is_shortened_in_the_audit_log() {
    let f = start().await;
    let huge = "x".repeat(200_000);
    let (status, _) = f.login("127.0.0.1", &huge, "whatever-it-is").await;
    assert_eq!(status, 401);
    let audit = f.gateway.store(|s| s.audit_log(None, 100)).await.unwrap();
    let failed = audit
        .iter()
        .find(|a| a.action == "inbox.login_failed")
        .unwrap();
    assert!(
        failed.subject.len() < 200 && failed.details.len() < 200,
        "{} and {} bytes",
        failed.subject.len(),
        failed.details.len()
    );
    assert!(failed.subject.contains("xxxx") || failed.details.contains("xxxx"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_the_password_role_or_the_user_changes() {
    let f = start().await;
    f.put_user("anna", Role::Agent, "anna-passphrase-1").await;

    // A new password (even the same one again) ends the session.
    let session = f.session().await;
    assert_eq!(f.inbox_page(&session).await, 200);
    f.put_user("anna", Role::Agent, "anna-passphrase-1").await;
    assert_eq!(f.inbox_page(&session).await, 303);

    // A new role ends it.
    let session = f.session().await;
    let mut lead = f.gateway.store(|s| s.user("anna")).await.unwrap().unwrap();
    lead.role = Role::Lead;
    let now = f.gateway.now();
    f.gateway
        .store(move |s| s.put_user(lead, "test", now).map(|_| ()))
        .await
        .unwrap();
    assert_eq!(f.inbox_page(&session).await, 303);

    // Removed and added again: the old session stays dead.
    let session = f.session().await;
    let now = f.gateway.now();
    f.gateway
        .store(move |s| s.remove_user("anna", "test", now).map(|_| ()))
        .await
        .unwrap();
    f.put_user("anna", Role::Lead, "anna-passphrase-2").await;
    assert_eq!(f.inbox_page(&session).await, 303);
}
