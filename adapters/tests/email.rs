//! The e-mail adapter end to end against real servers started here on 127.0.0.1: Dovecot for
//! IMAP (IDLE) and aiosmtpd for SMTP (`fakes/mailservers.rs`), a real runtime with the embedded
//! rulebook and a redb store in a temp dir, the real intake loop, outbox worker and
//! `EmailDeliver`. Proves: a mail is answered in its own thread (In-Reply-To, References,
//! Re: subject, to its sender); an auto-reply is not decided; a restart of the adapter in
//! the middle neither loses nor repeats a mail; a forwarded letter is decided and a disclaimer
//! is not; IDLE is issued again before a server that logs
//! out silent clients would (a proxy plays that server in front of Dovecot); and IMAP and
//! SMTP over TLS work with a certificate of the organisation's own CA named in `ca_file`, and
//! IMAP is refused without it.

#![allow(clippy::unwrap_used)]

#[path = "fakes/mailservers.rs"]
mod servers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use servers::{Dovecot, PASSWORD, SilenceLimit, SmtpSink, USER};
use tokio::sync::oneshot;
use webcare_adapters::email::{self, EmailConfig, EmailDeliver, Security, Server};
use webcare_adapters::gateway::Gateway;
use webcare_adapters::outbox::{OutboxConfig, OutboxWorker};
use webcare_adapters::secret::Secret;
use webcare_engine::store::{self, StoreOptions};
use webcare_engine::{Action, ChannelKind, Rulebook, Runtime, Store};

const OWN: &str = "gemeente@example.org";

struct Harness {
    dir: tempfile::TempDir,
    imap: Dovecot,
    smtp: SmtpSink,
    store: Arc<dyn Store>,
    gateway: Gateway,
    config: EmailConfig,
    adapter: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    _worker: oneshot::Sender<()>,
}

impl Harness {
    async fn start() -> Harness {
        let mut harness = Harness::prepare(false).await;
        harness.start_adapter();
        harness
    }

    /// The servers, the store and the outbox worker, without the intake loop: a test may
    /// change [`Harness::config`] first. `tls`: Dovecot also serves IMAP over TLS.
    async fn prepare(tls: bool) -> Harness {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let imap = if tls {
            Dovecot::start_tls(&dir.path().join("imap"))
        } else {
            Dovecot::start(&dir.path().join("imap"))
        };
        // With `tls`, SMTP over TLS too, with the certificate Dovecot got.
        let smtp = match &imap.ca_file {
            Some(_) => {
                let tls = imap.dir.join("tls");
                SmtpSink::start_smtps(dir.path(), &tls.join("server.pem"), &tls.join("server.key"))
            }
            None => SmtpSink::start(dir.path()),
        };
        let store = store::open(&StoreOptions {
            data_dir: dir.path().join("data"),
            ..StoreOptions::default()
        })
        .unwrap();
        let runtime = Arc::new(Runtime::new(
            Rulebook::embedded().unwrap(),
            Arc::clone(&store),
        ));
        let gateway = Gateway::new(runtime);
        let server = |port| Server {
            host: "127.0.0.1".into(),
            port,
            security: Security::None,
        };
        let config = EmailConfig {
            address: OWN.into(),
            imap: server(imap.port),
            smtp: server(smtp.port),
            username: USER.into(),
            password: Secret::new(PASSWORD),
            smtp_login: None,
            mailbox: "INBOX".into(),
            state_file: dir.path().join("data/email-position.json"),
            ca_file: None,
            idle_renew: Duration::from_secs(20),
            retry_delay: Duration::from_millis(100),
            max_retry_delay: Duration::from_secs(1),
        };
        let mut config = config;
        if let Some(ca) = &imap.ca_file {
            config.smtp.security = Security::Tls;
            config.ca_file = Some(ca.clone());
        }
        let mut worker = OutboxWorker::new(
            gateway.clone(),
            OutboxConfig {
                base_delay: Duration::from_millis(100),
                poll: Duration::from_millis(200),
                ..OutboxConfig::default()
            },
        );
        worker.register(
            ChannelKind::Email,
            Arc::new(EmailDeliver::new(&config, gateway.clone()).unwrap()),
        );
        let (stop_worker, worker_stopped) = oneshot::channel::<()>();
        tokio::spawn(worker.run(async move {
            let _ = worker_stopped.await;
        }));
        Harness {
            dir,
            imap,
            smtp,
            store,
            gateway,
            config,
            adapter: None,
            _worker: stop_worker,
        }
    }

    fn start_adapter(&mut self) {
        let (stop, stopped) = oneshot::channel::<()>();
        let (gateway, config) = (self.gateway.clone(), self.config.clone());
        let task = tokio::spawn(async move {
            email::run(gateway, config, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        self.adapter = Some((stop, task));
    }

    async fn stop_adapter(&mut self) {
        if let Some((stop, task)) = self.adapter.take() {
            let _ = stop.send(());
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the adapter stops within 10 s")
                .unwrap();
        }
    }

    fn messages(&self) -> Vec<String> {
        let mut ids: Vec<String> = webcare_engine::store::history(self.store.as_ref(), None)
            .filter_map(|m| m.ok())
            .filter(|m| m.message.channel == ChannelKind::Email)
            .map(|m| m.message.id)
            .collect();
        ids.sort();
        ids
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn mail(id: &str, subject: &str, headers: &str, body: &str) -> String {
    let headers = if headers.is_empty() {
        String::new()
    } else {
        format!("{headers}\n")
    };
    format!(
        "From: Ann de Vries <ann@example.net>\nTo: {OWN}\nSubject: {subject}\n\
         Date: Mon, 2 Mar 2026 10:00:00 +0100\nMessage-ID: <{id}>\n{headers}\n{body}\n"
    )
}

fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    mail.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(|l| l[name.len() + 1..].trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_is_answered_in_its_own_thread() {
    let h = Harness::start().await;
    h.imap.deliver(&mail(
        "q1@example.net",
        "Paspoort",
        "",
        "Hoe vraag ik een nieuw paspoort aan?\n\n-- \nAnn de Vries\nStationsstraat 1",
    ));
    let sent = eventually(Duration::from_secs(30), || {
        let sent = h.smtp.received();
        (!sent.is_empty()).then_some(sent)
    })
    .await;
    assert_eq!(sent.len(), 1);
    let reply = &sent[0];
    assert_eq!(
        header(reply, "In-Reply-To"),
        Some("<q1@example.net>"),
        "{reply}"
    );
    assert_eq!(
        header(reply, "References"),
        Some("<q1@example.net>"),
        "{reply}"
    );
    assert_eq!(header(reply, "Subject"), Some("Re: Paspoort"), "{reply}");
    assert!(
        header(reply, "To").unwrap().contains("ann@example.net"),
        "{reply}"
    );
    assert_eq!(
        header(reply, "Auto-Submitted"),
        Some("auto-replied"),
        "{reply}"
    );
    assert!(reply.to_lowercase().contains("paspoort"), "{reply}");
    let stored = h
        .store
        .message(ChannelKind::Email, "q1@example.net")
        .unwrap()
        .unwrap();
    assert!(
        !stored.message.text.contains("Stationsstraat"),
        "the signature is not decided: {}",
        stored.message.text
    );

    // The customer answers in the thread: the same conversation.
    h.imap.deliver(&mail(
        "q2@example.net",
        "Re: Paspoort",
        "In-Reply-To: <webcare.1@example.org>\nReferences: <q1@example.net> <webcare.1@example.org>",
        "En hoe lang duurt het?\n\nOp ma 2 mrt 2026 schreef Gemeente:\n> Hoe vraag ik een nieuw paspoort aan?",
    ));
    let second = eventually(Duration::from_secs(30), || {
        h.store
            .message(ChannelKind::Email, "q2@example.net")
            .unwrap()
    })
    .await;
    assert_eq!(second.message.conversation, "q1@example.net");
    assert_eq!(second.message.text, "En hoe lang duurt het?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_reply_is_not_decided() {
    let h = Harness::start().await;
    h.imap.deliver(&mail(
        "ooo@example.net",
        "Afwezig: Paspoort",
        "Auto-Submitted: auto-replied",
        "Ik ben afwezig tot maandag. Hoe vraag ik een nieuw paspoort aan?",
    ));
    // A mail after it that is decided shows the first was read and passed over.
    h.imap.deliver(&mail(
        "q3@example.net",
        "Paspoort",
        "",
        "Hoe vraag ik een nieuw paspoort aan?",
    ));
    eventually(Duration::from_secs(30), || {
        h.store
            .message(ChannelKind::Email, "q3@example.net")
            .unwrap()
    })
    .await;
    assert!(
        h.store
            .message(ChannelKind::Email, "ooo@example.net")
            .unwrap()
            .is_none()
    );
    eventually(Duration::from_secs(30), || {
        (h.smtp.received().len() == 1).then_some(())
    })
    .await;
    let sent = h.smtp.received();
    assert_eq!(header(&sent[0], "In-Reply-To"), Some("<q3@example.net>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_neither_loses_nor_repeats_a_mail() {
    let mut h = Harness::start().await;
    h.imap.deliver(&mail(
        "r1@example.net",
        "Vraag 1",
        "",
        "Hoe vraag ik een nieuw paspoort aan?",
    ));
    eventually(Duration::from_secs(30), || {
        h.store
            .message(ChannelKind::Email, "r1@example.net")
            .unwrap()
    })
    .await;
    h.stop_adapter().await;
    // Mail arrives while webcare is down.
    h.imap.deliver(&mail(
        "r2@example.net",
        "Vraag 2",
        "",
        "Wanneer is het milieupark open?",
    ));
    h.imap.deliver(&mail(
        "r3@example.net",
        "Vraag 3",
        "",
        "Hoe verhuis ik naar een andere gemeente?",
    ));
    h.start_adapter();
    eventually(Duration::from_secs(30), || {
        (h.messages().len() >= 3).then_some(())
    })
    .await;
    // And one after the restart, through IDLE.
    h.imap.deliver(&mail(
        "r4@example.net",
        "Vraag 4",
        "",
        "Wat kost een rijbewijs?",
    ));
    eventually(Duration::from_secs(30), || {
        (h.messages().len() >= 4).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        h.messages(),
        [
            "r1@example.net",
            "r2@example.net",
            "r3@example.net",
            "r4@example.net"
        ]
    );
    let replies = eventually(Duration::from_secs(30), || {
        let sent = h.smtp.received();
        (sent.len() >= 4).then_some(sent)
    })
    .await;
    let mut answered: Vec<&str> = replies
        .iter()
        .filter_map(|m| header(m, "In-Reply-To"))
        .collect();
    answered.sort();
    assert_eq!(
        answered,
        [
            "<r1@example.net>",
            "<r2@example.net>",
            "<r3@example.net>",
            "<r4@example.net>"
        ],
        "each mail answered once"
    );
    let position = std::fs::read_to_string(h.dir.path().join("data/email-position.json")).unwrap();
    assert!(position.contains("\"last_uid\":4"), "{position}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_is_issued_again_before_the_servers_timeout() {
    use std::sync::atomic::Ordering::SeqCst;

    let mut h = Harness::prepare(false).await;
    // A server that logs out a client silent for 3 s, and a renewal every 0.3 s (ten times
    // as often, so a loaded machine's late timers cannot make the test fail).
    let limit = Duration::from_secs(3);
    let server = SilenceLimit::start(h.imap.port, limit).await;
    h.config.imap.port = server.port;
    h.config.idle_renew = Duration::from_millis(300);
    h.start_adapter();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let idles = server.idles.load(SeqCst);
    assert!(idles >= 5, "IDLE issued {idles} times in 4 s");
    assert_eq!(server.closed_for_silence.load(SeqCst), 0);
    assert_eq!(server.connections.load(SeqCst), 1, "one session all along");
    // The renewed IDLE still hears new mail, in the same session.
    h.imap.deliver(&mail(
        "idle1@example.net",
        "Paspoort",
        "",
        "Hoe vraag ik een nieuw paspoort aan?",
    ));
    eventually(Duration::from_secs(10), || {
        h.store
            .message(ChannelKind::Email, "idle1@example.net")
            .unwrap()
    })
    .await;
    assert_eq!(server.connections.load(SeqCst), 1);
    h.stop_adapter().await;

    // The same server drops a client whose renewal comes after its limit: what the renewal
    // prevents, so the count above means something.
    let late = SilenceLimit::start(h.imap.port, limit).await;
    h.config.imap.port = late.port;
    h.config.idle_renew = Duration::from_secs(60);
    h.start_adapter();
    eventually(Duration::from_secs(10), || {
        (late.closed_for_silence.load(SeqCst) >= 1).then_some(())
    })
    .await;
    h.stop_adapter().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_and_smtp_over_tls_trust_the_ca_named_in_the_config() {
    let mut h = Harness::prepare(true).await;
    let tls_port = h.imap.tls_port.unwrap();
    h.config.imap = Server {
        host: "127.0.0.1".into(),
        port: tls_port,
        security: Security::Tls,
    };
    // Without the CA, only the public roots: the certificate is refused and nothing is read.
    let ca_file = h.config.ca_file.take();
    h.start_adapter();
    h.imap.deliver(&mail(
        "tls1@example.net",
        "Paspoort",
        "",
        "Hoe vraag ik een nieuw paspoort aan?",
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        h.store
            .message(ChannelKind::Email, "tls1@example.net")
            .unwrap()
            .is_none(),
        "an untrusted certificate must not be accepted"
    );
    h.stop_adapter().await;

    // With the CA in `ca_file` the session is TLS and the mail is taken in; the answer goes
    // out over SMTP with TLS (SMTPS), trusting the same CA.
    h.config.ca_file = ca_file;
    h.start_adapter();
    eventually(Duration::from_secs(20), || {
        h.store
            .message(ChannelKind::Email, "tls1@example.net")
            .unwrap()
    })
    .await;
    let sent = eventually(Duration::from_secs(20), || {
        let sent = h.smtp.received();
        (!sent.is_empty()).then_some(sent)
    })
    .await;
    assert_eq!(header(&sent[0], "In-Reply-To"), Some("<tls1@example.net>"));
    h.stop_adapter().await;

    // A CA file without a certificate is refused at once, with the path, not retried.
    let empty = h.dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    h.config.ca_file = Some(empty.clone());
    let error = email::run(h.gateway.clone(), h.config.clone(), std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&empty.display().to_string()), "{error}");
    assert!(error.contains("ca_file"), "{error}");
}

/// A citizen forwards a lawyer's letter in an existing thread without a word of their own, and
/// another asks a question above their company's disclaimer: the letter is decided (and goes
/// to the lawyers), the question is answered, not sent to the lawyers for its disclaimer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_is_read_and_a_disclaimer_is_not() {
    let h = Harness::start().await;
    h.imap.deliver(&mail(
        "fw1@example.net",
        "Fwd: Ingebrekestelling",
        "In-Reply-To: <webcare.1@example.org>\nReferences: <q0@example.net> <webcare.1@example.org>",
        "---------- Forwarded message ---------\nFrom: Mr. P. Jansen <p.jansen@advocaten.example>\n\
         Date: Mon, 30 Nov 2026 at 10:00\nSubject: Ingebrekestelling\n\n\
         Namens mijn cliënt stel ik de gemeente hierbij formeel in gebreke en aansprakelijk \
         voor de schade aan zijn woning.",
    ));
    h.imap.deliver(&mail(
        "dc1@example.net",
        "Grofvuil",
        "",
        "Wanneer wordt het grofvuil opgehaald in de Lindelaan?\n\nMet vriendelijke groet,\nJan\n\n\
         Dit e-mailbericht is uitsluitend bestemd voor de geadresseerde. Indien u dit bericht \
         onterecht ontvangt, wordt u verzocht de afzender te informeren. Aan dit bericht kunnen \
         geen rechten worden ontleend en wij zijn niet aansprakelijk voor virussen.",
    ));
    let stored = |id: &'static str| {
        let store = Arc::clone(&h.store);
        move || store.message(ChannelKind::Email, id).unwrap()
    };
    let letter = eventually(Duration::from_secs(30), stored("fw1@example.net")).await;
    assert!(
        letter.message.text.contains("in gebreke"),
        "the forwarded letter is what is decided: {}",
        letter.message.text
    );
    match &letter.decision.action {
        Action::Escalate { team, .. } => assert_eq!(team, "legal"),
        other => panic!("a lawyer's letter must go to the lawyers: {other:?}"),
    }
    let question = eventually(Duration::from_secs(30), stored("dc1@example.net")).await;
    assert!(
        !question.message.text.contains("geadresseerde"),
        "{}",
        question.message.text
    );
    assert!(
        matches!(question.decision.action, Action::Answer { .. }),
        "a question above a disclaimer is answered: {:?}",
        question.decision.action
    );
}
