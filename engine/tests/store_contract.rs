//! The store contract: every `Store` method, run against every backend. A backend is done when
//! this whole file passes for it; `contract_tests!` at the bottom instantiates each case per
//! backend. PostgreSQL runs on a throwaway cluster this binary starts (`support/postgres.rs`),
//! one database per test.

// A failed unwrap is a failed test, with its line; that is what these would say anyway.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Barrier, OnceLock};

#[path = "support/postgres.rs"]
mod pg;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use webcare_engine::store::{
    self, Backend, EscalationStatus, IntakeRecord, NewAudit, OutboxStatus, StoreError, StoreOptions,
};
use webcare_engine::{
    Action, CaseError, ChannelKind, ConversationState, DecideContext, Inbound, Intake, Mode,
    Priority, Rulebook, RulebookSource, Store,
};

/// The cluster of this test binary, started on first use.
fn cluster() -> &'static pg::Cluster {
    static CLUSTER: OnceLock<pg::Cluster> = OnceLock::new();
    CLUSTER.get_or_init(pg::Cluster::start)
}

fn rulebook() -> &'static Rulebook {
    static RULEBOOK: OnceLock<Rulebook> = OnceLock::new();
    RULEBOOK.get_or_init(|| Rulebook::embedded().expect("the embedded rulebook loads"))
}

/// Monday 2026-11-23 10:00 in Amsterdam: every office open.
fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
}

const QUESTION: &str = "Wat zijn de openingstijden van het stadskantoor?";
const FIRE: &str = "Er is brand in de flat aan de Dorpsstraat!";
const COMPLAINT: &str = "Ik heb een klacht over de afvalinzameling";

fn msg(id: &str, conversation: &str, author: &str, text: &str, at: DateTime<Utc>) -> Inbound {
    let mut m = Inbound::from_text(id, ChannelKind::Telegram, text, at);
    m.conversation = conversation.to_owned();
    m.author = author.to_owned();
    m
}

struct Fixture {
    _dir: tempfile::TempDir,
    options: StoreOptions,
    store: Option<Arc<dyn Store>>,
}

impl Fixture {
    fn new(backend: Backend) -> Self {
        Self::with(backend, false)
    }

    fn with(backend: Backend, redact: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            backend,
            data_dir: dir.path().join("data"),
            redact,
            cache_bytes: None,
            url: (backend == Backend::Postgres).then(|| cluster().new_database()),
        };
        let store = store::open(&options).unwrap();
        Fixture {
            _dir: dir,
            options,
            store: Some(store),
        }
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.store.as_ref().expect("the fixture has a store")
    }

    fn accept(&self, m: Inbound) -> store::IntakeReceipt {
        let now = m.received_at;
        Intake::new(rulebook(), &**self.store())
            .accept(m, now)
            .unwrap()
    }

    fn reopen(&mut self) {
        // The old store must be gone (its writer joined, its lock released) before reopening.
        // sled's own flusher thread lets go of the file lock a moment after the last handle is
        // dropped, so a reopen in the same process waits for it (a new process never has to).
        self.store = None;
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match store::open(&self.options) {
                Ok(store) => break self.store = Some(store),
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < give_up => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("reopening the store: {e}"),
            }
        }
    }
}

fn intake_stores_message_decision_conversation_and_outbox(backend: Backend) {
    let f = Fixture::new(backend);
    let m = msg("m1", "c1", "ann", QUESTION, monday());
    let receipt = f.accept(m.clone());
    assert!(!receipt.duplicate);
    assert_eq!(receipt.decision.action.name(), "answer");
    assert_eq!(receipt.escalation, None);

    let stored = f
        .store()
        .message(ChannelKind::Telegram, "m1")
        .unwrap()
        .unwrap();
    assert_eq!(stored.message, m);
    assert_eq!(stored.decision, receipt.decision);
    assert_eq!(stored.seq, receipt.seq);
    assert_eq!(stored.stored_at, monday());
    assert!(
        f.store()
            .message(ChannelKind::Discord, "m1")
            .unwrap()
            .is_none()
    );

    let conv = f
        .store()
        .conversation(ChannelKind::Telegram, "c1")
        .unwrap()
        .unwrap();
    assert_eq!(conv.messages, 1);
    assert_eq!(conv.auto_replies, 1);
    assert!(conv.participants.contains("ann"));
    assert_eq!(conv.state, ConversationState::Bot);

    let outbox = f
        .store()
        .outbox_entry(receipt.outbox.unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(outbox.status, OutboxStatus::Pending);
    assert_eq!(Some(outbox.text.as_str()), receipt.decision.action.reply());
    assert_eq!(outbox.in_reply_to, "m1");
    assert_eq!(outbox.conversation, "c1");

    let stats = f.store().stats().unwrap();
    assert_eq!(stats.messages, 1);
    assert_eq!(stats.pending_outbox, 1);
    assert!(stats.size_on_disk > 0);
    assert_eq!(f.store().backend(), backend);
}

fn duplicate_delivery_returns_the_first_decision(backend: Backend) {
    let f = Fixture::new(backend);
    let first = f.accept(msg("m1", "c1", "ann", QUESTION, monday()));
    // A replayed webhook with different content is still the same delivery.
    let again = f.accept(msg(
        "m1",
        "c1",
        "ann",
        FIRE,
        monday() + Duration::minutes(5),
    ));
    assert!(again.duplicate);
    assert_eq!(again.decision, first.decision);
    assert_eq!(again.seq, first.seq);
    assert_eq!(f.store().stats().unwrap().messages, 1);
    assert_eq!(f.store().stats().unwrap().pending_outbox, 1);
    let conv = f
        .store()
        .conversation(ChannelKind::Telegram, "c1")
        .unwrap()
        .unwrap();
    assert_eq!(conv.messages, 1);

    // The store itself refuses the duplicate too, when intake's early check was passed.
    let m = msg("m1", "c1", "ann", FIRE, monday());
    let decision = rulebook().decide(&m, &DecideContext::default());
    let receipt = f
        .store()
        .record_intake(IntakeRecord {
            message: m,
            decision,
            facts: Default::default(),
            today: monday().date_naive(),
            sla_deadline: None,
            now: monday(),
            mode: Default::default(),
            shadow: None,
            reply_inline: false,
            case: Default::default(),
        })
        .unwrap();
    assert!(receipt.duplicate);
    assert_eq!(receipt.decision, first.decision);
}

fn concurrent_duplicate_deliveries_are_decided_once(backend: Backend) {
    let f = Fixture::new(backend);
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let store = Arc::clone(f.store());
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                // Different text per delivery, so a second decision would be visible.
                let text = if i % 2 == 0 { QUESTION } else { FIRE };
                let m = msg("dup", "c1", "ann", text, monday());
                let decision = rulebook().decide(&m, &DecideContext::default());
                barrier.wait();
                store
                    .record_intake(IntakeRecord {
                        message: m,
                        decision,
                        facts: Default::default(),
                        today: monday().date_naive(),
                        sla_deadline: None,
                        now: monday(),
                        mode: Default::default(),
                        shadow: None,
                        reply_inline: false,
                        case: Default::default(),
                    })
                    .unwrap()
            })
        })
        .collect();
    let receipts: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(receipts.iter().filter(|r| !r.duplicate).count(), 1);
    let stored = f
        .store()
        .message(ChannelKind::Telegram, "dup")
        .unwrap()
        .unwrap();
    for r in &receipts {
        assert_eq!(r.decision, stored.decision);
    }
    assert_eq!(f.store().stats().unwrap().messages, 1);
}

fn concurrent_writers_lose_nothing(backend: Backend) {
    let f = Fixture::new(backend);
    let (threads, per_thread) = (8, 60);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(f.store());
            std::thread::spawn(move || {
                let intake = Intake::new(rulebook(), &*store);
                let mut seqs = Vec::new();
                for i in 0..per_thread {
                    // Half go to one shared conversation, half to the thread's own.
                    let conv = if i % 2 == 0 {
                        "shared".to_owned()
                    } else {
                        format!("own-{t}")
                    };
                    let text = [QUESTION, FIRE, COMPLAINT][i % 3];
                    let at = monday() + Duration::seconds(i as i64);
                    let m = msg(&format!("t{t}-{i}"), &conv, &format!("user-{t}"), text, at);
                    seqs.push(intake.accept(m, at).unwrap().seq);
                }
                seqs
            })
        })
        .collect();
    let mut seqs: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let total = threads * per_thread;
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        total,
        "every intake got its own sequence number"
    );
    assert_eq!(f.store().stats().unwrap().messages, total as u64);
    for t in 0..threads {
        for i in 0..per_thread {
            let id = format!("t{t}-{i}");
            assert!(
                f.store()
                    .message(ChannelKind::Telegram, &id)
                    .unwrap()
                    .is_some(),
                "{id}"
            );
        }
    }
    let shared = f
        .store()
        .conversation(ChannelKind::Telegram, "shared")
        .unwrap()
        .unwrap();
    assert_eq!(shared.messages, (total / 2) as u64);
    assert_eq!(shared.participants.len(), threads);
    assert_eq!(
        f.store()
            .conversation_messages(ChannelKind::Telegram, "shared")
            .unwrap()
            .len(),
        total / 2
    );
    // One open escalation per team and conversation (fires to the crisis team, complaints to
    // webcare), however many escalating messages arrived.
    assert_eq!(
        f.store().open_escalations().unwrap().len(),
        2 * (threads + 1)
    );
}

fn conversation_facts_follow_the_clock(backend: Backend) {
    let f = Fixture::new(backend);
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let facts = f
        .store()
        .conversation_facts(ChannelKind::Telegram, "c1", monday(), day(23))
        .unwrap();
    assert_eq!(
        facts,
        Default::default(),
        "an unknown conversation has zero facts"
    );

    let t0 = monday();
    f.accept(msg("a", "c1", "ann", COMPLAINT, t0));
    f.accept(msg("b", "c1", "ann", QUESTION, t0 + Duration::hours(1)));
    let facts = f
        .store()
        .conversation_facts(
            ChannelKind::Telegram,
            "c1",
            t0 + Duration::hours(2),
            day(23),
        )
        .unwrap();
    assert_eq!(facts.messages_today, 2);
    assert_eq!(facts.complaints_24h, 1);
    assert_eq!(facts.complaints_7d, 1);
    assert!(facts.auto_replies >= 1);

    // Two days later: a new day, the complaint is older than 24 h but within the week.
    let later = t0 + Duration::days(2);
    let facts = f
        .store()
        .conversation_facts(ChannelKind::Telegram, "c1", later, day(25))
        .unwrap();
    assert_eq!(facts.messages_today, 0);
    assert_eq!(facts.complaints_24h, 0);
    assert_eq!(facts.complaints_7d, 1);
    // And what a message sees is the facts before it: its own complaint is not counted yet.
    let receipt = f.accept(msg("c", "c1", "ann", COMPLAINT, later));
    assert!(!receipt.duplicate);
    let stored = f
        .store()
        .message(ChannelKind::Telegram, "c")
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.facts, facts,
        "the facts the decision saw are stored with it"
    );
    let facts = f
        .store()
        .conversation_facts(ChannelKind::Telegram, "c1", later, day(25))
        .unwrap();
    assert_eq!((facts.messages_today, facts.complaints_7d), (1, 2));
    let facts = f
        .store()
        .conversation_facts(
            ChannelKind::Telegram,
            "c1",
            t0 + Duration::days(8),
            NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        )
        .unwrap();
    assert_eq!(facts.complaints_7d, 1);
}

/// The facts reach the scripts: the default rulebook makes the third complaint in a week from
/// one conversation high priority, and the conversation's open escalation follows.
fn repeated_complaints_raise_the_priority(backend: Backend) {
    let f = Fixture::new(backend);
    let t0 = monday();
    let mut receipts = Vec::new();
    for (i, days) in [0, 2, 4].into_iter().enumerate() {
        let at = t0 + Duration::days(days);
        receipts.push(f.accept(msg(&format!("k{i}"), "c1", "ann", COMPLAINT, at)));
    }
    let third = receipts.last().unwrap();
    assert_eq!(
        third.decision.action.priority(),
        Some(Priority::High),
        "{:?}",
        third.decision
    );
    assert!(
        third
            .decision
            .diagnostics
            .reasons
            .iter()
            .any(|r| r.contains("third complaint")),
        "{:?}",
        third.decision.diagnostics.reasons
    );
    let esc = f
        .store()
        .escalation(third.escalation.unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(esc.priority, Priority::High);
    assert_eq!(esc.messages.len(), 3);
    // A complaint from another conversation is not affected.
    let other = f.accept(msg("x", "c2", "bob", COMPLAINT, t0 + Duration::days(4)));
    assert_ne!(other.decision.action.priority(), Some(Priority::High));
}

fn resolving_starts_the_automatic_reply_budget_again(backend: Backend) {
    let f = Fixture::new(backend);
    let t0 = monday();
    for (i, id) in ["a1", "a2"].into_iter().enumerate() {
        let answered = f.accept(msg(
            id,
            "c1",
            "ann",
            QUESTION,
            t0 + Duration::minutes(i as i64),
        ));
        assert_eq!(answered.decision.action.name(), "answer");
    }
    let fire = f.accept(msg("f1", "c1", "ann", FIRE, t0 + Duration::minutes(5)));
    let conversation = |f: &Fixture| {
        f.store()
            .conversation(ChannelKind::Telegram, "c1")
            .unwrap()
            .unwrap()
    };
    // Two answers and the fire's holding reply.
    assert_eq!(conversation(&f).auto_replies, 3);
    f.store()
        .resolve_escalation(fire.escalation.unwrap(), "bob", t0 + Duration::hours(1))
        .unwrap();
    assert_eq!(
        conversation(&f).auto_replies,
        0,
        "a person resolved the case"
    );
}

fn escalations_open_join_claim_and_resolve(backend: Backend) {
    let f = Fixture::new(backend);
    let t0 = monday();
    let first = f.accept(msg("f1", "c1", "ann", FIRE, t0));
    let Action::Escalate { team, priority, .. } = &first.decision.action else {
        panic!("a fire escalates: {:?}", first.decision.action);
    };
    let id = first.escalation.unwrap();
    let esc = f.store().escalation(id).unwrap().unwrap();
    assert_eq!((&esc.team, esc.priority), (team, *priority));
    assert_eq!(esc.status, EscalationStatus::Open);
    assert_eq!(esc.created_at, t0);
    assert!(esc.sla_deadline.is_some_and(|d| d > t0));
    assert_eq!(esc.messages, vec!["f1".to_owned()]);
    assert!(!esc.reason.is_empty());

    let second = f.accept(msg("f2", "c1", "ann", FIRE, t0 + Duration::minutes(1)));
    assert_eq!(
        second.escalation,
        Some(id),
        "joins the open escalation of its team"
    );
    let esc = f.store().escalation(id).unwrap().unwrap();
    assert_eq!(esc.messages, vec!["f1".to_owned(), "f2".to_owned()]);
    assert_eq!(esc.history.len(), 2);
    assert_eq!(f.store().open_escalations().unwrap().len(), 1);

    let claimed = f
        .store()
        .claim_escalation(id, "bob", t0 + Duration::minutes(2))
        .unwrap();
    assert_eq!(
        claimed.status,
        EscalationStatus::Claimed { by: "bob".into() }
    );
    assert!(matches!(
        f.store().claim_escalation(id, "eve", t0),
        Err(CaseError::AlreadyClaimed { by, .. }) if by == "bob"
    ));
    assert_eq!(
        f.store()
            .claim_escalation(id, "bob", t0)
            .unwrap()
            .history
            .len(),
        3
    );
    let conv = f
        .store()
        .conversation(ChannelKind::Telegram, "c1")
        .unwrap()
        .unwrap();
    assert_eq!(conv.state, ConversationState::Human);

    // While bob owns it the bot stays silent on a question it would otherwise answer.
    let quiet = f.accept(msg("q1", "c1", "ann", QUESTION, t0 + Duration::minutes(3)));
    assert_eq!(quiet.decision.action.name(), "log");
    assert_eq!(quiet.outbox, None);

    let resolved = f
        .store()
        .resolve_escalation(id, "bob", t0 + Duration::hours(1))
        .unwrap();
    assert_eq!(
        resolved.status,
        EscalationStatus::Resolved { by: "bob".into() }
    );
    assert_eq!(resolved.history.last().unwrap().change, "resolved");
    assert!(matches!(
        f.store().resolve_escalation(id, "bob", t0),
        Err(CaseError::AlreadyResolved(_))
    ));
    assert!(matches!(
        f.store().claim_escalation(id, "bob", t0),
        Err(CaseError::AlreadyResolved(_))
    ));
    assert!(matches!(
        f.store().claim_escalation(999, "bob", t0),
        Err(CaseError::NoSuchEscalation(999))
    ));
    assert!(f.store().open_escalations().unwrap().is_empty());
    let conv = f
        .store()
        .conversation(ChannelKind::Telegram, "c1")
        .unwrap()
        .unwrap();
    assert_eq!(
        (conv.state, conv.open_escalation),
        (ConversationState::Bot, None)
    );

    // An escalating message for the same team soon after resolution reopens it (see the
    // case-state contract); one for another team opens that team's own escalation.
    let third = f.accept(msg("f3", "c1", "ann", FIRE, t0 + Duration::hours(2)));
    assert_eq!(third.escalation, Some(id));
    let fourth = f.accept(msg("f4", "c1", "ann", COMPLAINT, t0 + Duration::hours(3)));
    assert!(fourth.escalation.is_some_and(|e| e != id));
    let actions: Vec<String> = f
        .store()
        .audit_log(None, 100)
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(actions, ["escalation.claim", "escalation.resolve"]);
}

/// A hand-back closes the escalation and gives the conversation to the bot, like resolving,
/// and its audit entries are written in that same transaction: no hand-back without its
/// `escalation.handback` entry, which tells it from a solution.
fn handing_back_resolves_and_says_so_in_one_go(backend: Backend) {
    let f = Fixture::new(backend);
    let t0 = monday();
    let id = f
        .accept(msg("h1", "c1", "ann", FIRE, t0))
        .escalation
        .unwrap();
    f.store()
        .claim_escalation(id, "bob", t0 + Duration::minutes(1))
        .unwrap();
    let back = f
        .store()
        .hand_back_escalation(id, "bob", t0 + Duration::minutes(2))
        .unwrap();
    assert_eq!(back.status, EscalationStatus::Resolved { by: "bob".into() });
    let conv = f
        .store()
        .conversation(ChannelKind::Telegram, "c1")
        .unwrap()
        .unwrap();
    assert_eq!(conv.state, ConversationState::Bot);
    let audit: Vec<_> = f
        .store()
        .audit_log(None, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.subject == format!("escalation {id}"))
        .map(|e| (e.action, e.actor, e.details))
        .collect();
    assert_eq!(
        audit,
        [
            ("escalation.claim".into(), "bob".into(), String::new()),
            ("escalation.resolve".into(), "bob".into(), String::new()),
            (
                "escalation.handback".into(),
                "bob".into(),
                "conversation back to the bot".into()
            ),
        ]
    );
    assert!(matches!(
        f.store().hand_back_escalation(id, "bob", t0),
        Err(CaseError::AlreadyResolved(_))
    ));
}

fn outbox_retries_sends_and_gives_up(backend: Backend) {
    let f = Fixture::new(backend);
    let t0 = monday();
    let a = f
        .accept(msg("a", "c1", "ann", QUESTION, t0))
        .outbox
        .unwrap();
    let b = f
        .accept(msg("b", "c2", "bea", QUESTION, t0))
        .outbox
        .unwrap();
    let c = f
        .accept(msg("c", "c3", "cas", QUESTION, t0))
        .outbox
        .unwrap();
    let due: Vec<u64> = f
        .store()
        .due_outbox(t0, 10)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(due, [a, b, c]);
    assert_eq!(f.store().due_outbox(t0, 2).unwrap().len(), 2);

    let sent = f.store().outbox_sent(a, t0 + Duration::seconds(1)).unwrap();
    assert_eq!(
        sent.status,
        OutboxStatus::Sent {
            at: t0 + Duration::seconds(1)
        }
    );
    assert_eq!(sent.attempts, 1);
    assert!(matches!(
        f.store().outbox_sent(a, t0),
        Err(CaseError::OutboxFinished(_))
    ));

    let retry_at = t0 + Duration::minutes(5);
    let failed = f
        .store()
        .outbox_failed(b, "429 too many requests", Some(retry_at), t0)
        .unwrap();
    assert_eq!(failed.status, OutboxStatus::Pending);
    assert_eq!(failed.last_error.as_deref(), Some("429 too many requests"));
    assert_eq!(failed.next_attempt_at, retry_at);
    let due: Vec<u64> = f
        .store()
        .due_outbox(t0 + Duration::minutes(1), 10)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(due, [c]);
    let due: Vec<u64> = f
        .store()
        .due_outbox(retry_at, 10)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(due, [b, c]);

    let dead = f
        .store()
        .outbox_failed(c, "chat not found", None, t0)
        .unwrap();
    assert_eq!(dead.status, OutboxStatus::Dead);
    assert_eq!(f.store().stats().unwrap().pending_outbox, 1);
    assert!(matches!(
        f.store().outbox_failed(c, "x", None, t0),
        Err(CaseError::OutboxFinished(_))
    ));
    assert!(matches!(
        f.store().outbox_sent(77, t0),
        Err(CaseError::NoSuchOutboxEntry(77))
    ));
}

fn outbox_channels_postponement_dead_letters_and_agent_replies(backend: Backend) {
    let f = Fixture::new(backend);
    let t0 = monday();
    let mut web = msg("w", "web-1", "wim", QUESTION, t0);
    web.channel = ChannelKind::Webchat;
    let w = f.accept(web).outbox.unwrap();
    let t = f
        .accept(msg("t", "tg-1", "tom", QUESTION, t0))
        .outbox
        .unwrap();

    // Only the channels asked for; the others stay pending.
    let ids = |entries: Vec<store::OutboxEntry>| entries.iter().map(|e| e.id).collect::<Vec<_>>();
    let webchat = [ChannelKind::Webchat];
    assert_eq!(
        ids(f.store().due_outbox_for(t0, &webchat, 10).unwrap()),
        [w]
    );
    assert_eq!(
        ids(f.store().due_outbox_for(t0, &ChannelKind::ALL, 10).unwrap()),
        [w, t]
    );
    assert!(f.store().due_outbox_for(t0, &[], 10).unwrap().is_empty());

    // A rate limit moves the entry without counting an attempt.
    let later = t0 + Duration::seconds(30);
    let postponed = f
        .store()
        .outbox_postponed(t, "rate limited", later, t0)
        .unwrap();
    assert_eq!((postponed.attempts, postponed.next_attempt_at), (0, later));
    assert_eq!(postponed.last_error.as_deref(), Some("rate limited"));
    assert!(
        f.store()
            .due_outbox_for(t0, &ChannelKind::ALL, 10)
            .unwrap()
            .len()
            == 1
    );
    assert_eq!(
        ids(f
            .store()
            .due_outbox_for(later, &ChannelKind::ALL, 10)
            .unwrap()),
        [w, t]
    );

    // Giving up opens an escalation for the given team, in the same transaction.
    f.store()
        .outbox_failed(t, "500 internal server error", Some(later), t0)
        .unwrap();
    let deadline = t0 + Duration::hours(4);
    let dead = f
        .store()
        .outbox_dead_letter(
            t,
            "500 internal server error",
            "webcare",
            Some(deadline),
            later,
        )
        .unwrap();
    assert_eq!(dead.entry.status, OutboxStatus::Dead);
    assert_eq!(dead.entry.attempts, 2);
    let esc = f.store().escalation(dead.escalation.id).unwrap().unwrap();
    assert_eq!(esc, dead.escalation);
    assert_eq!(
        (esc.team.as_str(), esc.conversation.as_str(), esc.priority),
        ("webcare", "tg-1", Priority::High)
    );
    assert_eq!(
        esc.reason,
        "reply could not be delivered: 500 internal server error"
    );
    assert_eq!(esc.messages, ["t"]);
    assert_eq!(esc.sla_deadline, Some(deadline));
    assert!(
        f.store()
            .open_escalations()
            .unwrap()
            .iter()
            .any(|e| e.id == esc.id)
    );
    let conv = f
        .store()
        .conversation(ChannelKind::Telegram, "tg-1")
        .unwrap()
        .unwrap();
    assert_eq!(conv.open_escalation, Some(esc.id));
    assert!(matches!(
        f.store()
            .outbox_dead_letter(t, "again", "webcare", None, later),
        Err(CaseError::OutboxFinished(_))
    ));
    assert!(matches!(
        f.store().outbox_postponed(t, "again", later, later),
        Err(CaseError::OutboxFinished(_))
    ));
    let audit = f.store().audit_log(None, 100).unwrap();
    assert!(audit.iter().any(|a| a.action == "outbox.dead"));

    // An agent's reply joins the conversation's transcript, after the bot's.
    let reply = f
        .store()
        .queue_reply(store::NewReply {
            channel: ChannelKind::Webchat,
            conversation: "web-1".into(),
            in_reply_to: "w".into(),
            text: "Hallo Wim, ik kijk het voor je na.".into(),
            actor: "agent-anna".into(),
            now: later,
        })
        .unwrap();
    assert_eq!(reply.status, OutboxStatus::Pending);
    let transcript = f
        .store()
        .conversation_outbox(ChannelKind::Webchat, "web-1")
        .unwrap();
    assert_eq!(ids(transcript.clone()), [w, reply.id]);
    assert_eq!(transcript[1].text, "Hallo Wim, ik kijk het voor je na.");
    // In order per conversation: the agent's reply waits until the bot's is sent.
    assert_eq!(
        ids(f.store().due_outbox_for(later, &webchat, 10).unwrap()),
        [w]
    );
    f.store().outbox_sent(w, later).unwrap();
    assert_eq!(
        ids(f.store().due_outbox_for(later, &webchat, 10).unwrap()),
        [reply.id]
    );
    assert!(
        f.store()
            .conversation_outbox(ChannelKind::Webchat, "nobody")
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        f.store().queue_reply(store::NewReply {
            channel: ChannelKind::Webchat,
            conversation: "nobody".into(),
            in_reply_to: "x".into(),
            text: "hi".into(),
            actor: "agent-anna".into(),
            now: later,
        }),
        Err(CaseError::NoSuchConversation { .. })
    ));
    assert!(
        f.store()
            .audit_log(None, 100)
            .unwrap()
            .iter()
            .any(|a| a.action == "outbox.reply" && a.actor == "agent-anna")
    );
}

fn audit_log_appends_and_pages(backend: Backend) {
    let f = Fixture::new(backend);
    for i in 0..5 {
        let id = f
            .store()
            .append_audit(NewAudit {
                at: monday() + Duration::minutes(i),
                actor: "lead".into(),
                action: "rulebook.deploy".into(),
                subject: format!("rulebook v{i}"),
                details: String::new(),
            })
            .unwrap();
        assert_eq!(id, i as u64);
    }
    let first = f.store().audit_log(None, 2).unwrap();
    assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), [0, 1]);
    let rest = f.store().audit_log(Some(1), 10).unwrap();
    assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(rest[0].subject, "rulebook v2");
    assert_eq!(rest[0].at, monday() + Duration::minutes(2));
}

fn conversation_state_is_set_and_audited(backend: Backend) {
    let f = Fixture::new(backend);
    assert!(matches!(
        f.store().set_conversation_state(
            ChannelKind::Telegram,
            "nope",
            ConversationState::Closed,
            "bob",
            monday()
        ),
        Err(CaseError::NoSuchConversation { .. })
    ));
    f.accept(msg("a", "c1", "ann", QUESTION, monday()));
    let conv = f
        .store()
        .set_conversation_state(
            ChannelKind::Telegram,
            "c1",
            ConversationState::Human,
            "bob",
            monday(),
        )
        .unwrap();
    assert_eq!(conv.state, ConversationState::Human);
    let facts = f
        .store()
        .conversation_facts(ChannelKind::Telegram, "c1", monday(), monday().date_naive())
        .unwrap();
    assert_eq!(facts.state, ConversationState::Human);
    let audit = f.store().audit_log(None, 10).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].details, "bot → human");
    assert_eq!(audit[0].actor, "bob");
}

fn history_is_in_time_order_and_pages(backend: Backend) {
    let f = Fixture::new(backend);
    let t0 = monday();
    // Delivered out of order: history follows received_at, not arrival.
    for (id, minutes) in [("m3", 30), ("m1", 10), ("m2", 20), ("m0", -10)] {
        f.accept(msg(
            id,
            "c1",
            "ann",
            QUESTION,
            t0 + Duration::minutes(minutes),
        ));
    }
    let all: Vec<String> = store::history(&**f.store(), None)
        .map(|m| m.unwrap().message.id)
        .collect();
    assert_eq!(all, ["m0", "m1", "m2", "m3"]);
    let since: Vec<String> = store::history(&**f.store(), Some(t0 + Duration::minutes(15)))
        .map(|m| m.unwrap().message.id)
        .collect();
    assert_eq!(since, ["m2", "m3"]);

    let page = f.store().history_page(None, None, 3).unwrap();
    assert_eq!(page.len(), 3);
    let next = f
        .store()
        .history_page(None, Some(page[2].cursor()), 3)
        .unwrap();
    assert_eq!(
        next.iter()
            .map(|m| m.message.id.as_str())
            .collect::<Vec<_>>(),
        ["m3"]
    );
    let messages = f
        .store()
        .conversation_messages(ChannelKind::Telegram, "c1")
        .unwrap();
    assert_eq!(messages.len(), 4);
}

fn forget_erases_an_author_and_audits_without_content(backend: Backend) {
    let f = Fixture::new(backend);
    let t0 = monday();
    f.accept(msg(
        "a1",
        "ann-dm",
        "ann",
        "Mijn adres is Dorpsstraat 1, brand!",
        t0,
    ));
    f.accept(msg("a2", "ann-dm", "ann", QUESTION, t0));
    f.accept(msg("a3", "group", "ann", COMPLAINT, t0));
    f.accept(msg("b1", "group", "bob", QUESTION, t0));
    let before = f.store().stats().unwrap();
    assert_eq!(before.messages, 4);

    let report = f
        .store()
        .forget_author("ann", "privacy-officer", t0)
        .unwrap();
    assert_eq!(report.messages, 3);
    assert_eq!(report.conversations, 1);
    assert!(report.escalations >= 1, "{report:?}");
    assert!(report.outbox >= 1, "{report:?}");

    for id in ["a1", "a2", "a3"] {
        assert!(
            f.store()
                .message(ChannelKind::Telegram, id)
                .unwrap()
                .is_none(),
            "{id}"
        );
    }
    assert!(
        f.store()
            .message(ChannelKind::Telegram, "b1")
            .unwrap()
            .is_some()
    );
    assert!(
        f.store()
            .conversation(ChannelKind::Telegram, "ann-dm")
            .unwrap()
            .is_none()
    );
    let group = f
        .store()
        .conversation(ChannelKind::Telegram, "group")
        .unwrap()
        .unwrap();
    assert!(!group.participants.contains("ann"));
    assert_eq!(f.store().stats().unwrap().messages, 1);
    let history: Vec<String> = store::history(&**f.store(), None)
        .map(|m| m.unwrap().message.author)
        .collect();
    assert_eq!(history, ["bob"]);
    assert!(
        f.store()
            .open_escalations()
            .unwrap()
            .iter()
            .all(|e| e.conversation != "ann-dm")
    );
    // Ann's complaint opened an escalation of the shared conversation: it stays (Bob is in
    // it), without her as its customer.
    let shared: Vec<_> = f
        .store()
        .open_escalations()
        .unwrap()
        .into_iter()
        .filter(|e| e.conversation == "group")
        .collect();
    assert!(!shared.is_empty());
    assert!(
        shared
            .iter()
            .all(|e| e.case.author.as_deref() != Some("ann")),
        "{shared:?}"
    );
    assert!(
        f.store()
            .due_outbox(t0, 100)
            .unwrap()
            .iter()
            .all(|e| e.conversation != "ann-dm")
    );

    let audit = f.store().audit_log(None, 10).unwrap();
    let entry = audit.last().unwrap();
    assert_eq!(entry.action, "privacy.forget");
    assert_eq!(entry.actor, "privacy-officer");
    let text = format!("{} {}", entry.subject, entry.details);
    assert!(
        !text.contains("ann") && !text.contains("Dorpsstraat"),
        "{text}"
    );
    assert!(text.contains("3 messages"), "{text}");
}

/// Issue 15: after `forget`, a bridge that delivers an erased message again (same channel and
/// id) gets it acknowledged but not stored, decided or acted on: what was erased stays erased,
/// across a reopen, in a single intake and in a batch. The author's new messages are taken in.
fn an_erased_delivery_delivered_again_stays_erased(backend: Backend) {
    let mut f = Fixture::new(backend);
    let t0 = monday();
    f.accept(msg("a1", "ann-dm", "ann", FIRE, t0));
    f.accept(msg("a2", "group", "ann", COMPLAINT, t0));
    f.accept(msg("b1", "group", "bob", QUESTION, t0));
    f.store().forget_author("ann", "dpo", t0).unwrap();
    f.reopen();

    let later = t0 + Duration::hours(1);
    for (id, conversation, text) in [("a1", "ann-dm", FIRE), ("a2", "group", COMPLAINT)] {
        let again = f.accept(msg(id, conversation, "ann", text, later));
        assert!(again.duplicate, "{id}: {again:?}");
        assert_eq!(again.decision.action, Action::Log, "{id}");
        assert_eq!(again.escalation, None, "{id}");
        assert_eq!(again.outbox, None, "{id}");
        assert!(
            again.decision.diagnostics.reasons[0].contains("erased"),
            "{id}: {:?}",
            again.decision.diagnostics.reasons
        );
        assert!(
            f.store()
                .message(ChannelKind::Telegram, id)
                .unwrap()
                .is_none(),
            "{id} came back"
        );
    }
    let batch = Intake::new(rulebook(), &**f.store())
        .accept_batch(vec![msg("a1", "ann-dm", "ann", FIRE, later)], later)
        .unwrap();
    assert!(batch[0].duplicate && batch[0].decision.action == Action::Log);

    let store = f.store();
    assert_eq!(store.stats().unwrap().messages, 1, "only bob's message");
    assert!(
        store
            .conversation(ChannelKind::Telegram, "ann-dm")
            .unwrap()
            .is_none()
    );
    assert!(store.author_conversations("ann").unwrap().is_empty());
    let group = store
        .conversation(ChannelKind::Telegram, "group")
        .unwrap()
        .unwrap();
    assert!(!group.participants.contains("ann"));
    assert!(
        store
            .open_escalations()
            .unwrap()
            .iter()
            .all(|e| e.conversation != "ann-dm"),
        "no escalation came back"
    );
    // A repeat of a message that was not erased is still the ordinary duplicate.
    let repeat = f.accept(msg("b1", "group", "bob", QUESTION, later));
    assert!(repeat.duplicate && repeat.decision.action.name() == "answer");
    // What the author writes after `forget` is a new message, taken in as usual.
    let fresh = f.accept(msg("a3", "ann-dm", "ann", QUESTION, later));
    assert!(!fresh.duplicate);
    assert!(
        store
            .message(ChannelKind::Telegram, "a3")
            .unwrap()
            .is_some()
    );
}

fn retention_purges_old_data_only(backend: Backend) {
    let f = Fixture::new(backend);
    let old = monday() - Duration::days(40);
    f.accept(msg("old1", "stale", "ann", QUESTION, old));
    f.accept(msg("old2", "active", "bob", QUESTION, old));
    f.accept(msg("new1", "active", "bob", QUESTION, monday()));
    let stale_outbox = f.store().due_outbox(monday(), 10).unwrap()[0].id;
    f.store().outbox_sent(stale_outbox, old).unwrap();

    let cutoff = monday() - Duration::days(30);
    let report = f
        .store()
        .purge_before(cutoff, "retention", monday())
        .unwrap();
    assert_eq!(report.messages, 2);
    assert_eq!(report.conversations, 1);
    assert!(
        f.store()
            .message(ChannelKind::Telegram, "old1")
            .unwrap()
            .is_none()
    );
    assert!(
        f.store()
            .message(ChannelKind::Telegram, "old2")
            .unwrap()
            .is_none()
    );
    assert!(
        f.store()
            .message(ChannelKind::Telegram, "new1")
            .unwrap()
            .is_some()
    );
    assert!(
        f.store()
            .conversation(ChannelKind::Telegram, "stale")
            .unwrap()
            .is_none()
    );
    assert!(
        f.store()
            .conversation(ChannelKind::Telegram, "active")
            .unwrap()
            .is_some()
    );
    assert!(f.store().outbox_entry(stale_outbox).unwrap().is_none());
    assert_eq!(f.store().stats().unwrap().messages, 1);
    let audit = f.store().audit_log(None, 10).unwrap();
    assert_eq!(audit.last().unwrap().action, "privacy.retention");
    // Nothing left to purge: a second run is a no-op.
    let again = f
        .store()
        .purge_before(cutoff, "retention", monday())
        .unwrap();
    assert_eq!(again.messages + again.conversations, 0);
}

fn reopening_keeps_everything_and_continues_ids(backend: Backend) {
    let mut f = Fixture::new(backend);
    let first = f.accept(msg("a", "c1", "ann", FIRE, monday()));
    f.reopen();
    let stored = f
        .store()
        .message(ChannelKind::Telegram, "a")
        .unwrap()
        .unwrap();
    assert_eq!(stored.decision, first.decision);
    let again = f.accept(msg("a", "c1", "ann", FIRE, monday()));
    assert!(again.duplicate);
    let next = f.accept(msg("b", "c2", "bob", FIRE, monday()));
    assert!(next.seq > first.seq);
    assert_ne!(next.escalation, first.escalation);
    assert_ne!(next.outbox, first.outbox);
    assert_eq!(f.store().stats().unwrap().messages, 2);
}

fn a_corrupt_store_is_a_clear_error_and_is_left_alone(backend: Backend) {
    if backend == Backend::Postgres {
        return a_tampered_schema_is_a_clear_error_and_is_left_alone();
    }
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        backend,
        data_dir: dir.path().to_owned(),
        redact: false,
        cache_bytes: None,
        url: None,
    };
    let path = backend.path_in(dir.path());
    let garbage = b"this is not a database, it is a shopping list: milk, eggs".repeat(200);
    let victim = match backend {
        Backend::Redb => path.clone(),
        Backend::Sled => {
            // Make a real sled store, then overwrite its files.
            drop(store::open(&options).unwrap());
            path.join("db")
        }
        Backend::Postgres => unreachable!("tested above"),
    };
    std::fs::write(&victim, &garbage).unwrap();
    let error = match store::open(&options) {
        Ok(_) => panic!("a garbage store must not open"),
        Err(e) => e,
    };
    let text = error.to_string();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert!(
        text.contains(&path.display().to_string()),
        "names the file: {text}"
    );
    assert!(text.contains("backup"), "says what to do: {text}");
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        garbage,
        "never re-initialised"
    );
}

fn another_backends_data_is_not_silently_ignored(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let other = match backend {
        Backend::Redb => Backend::Sled,
        _ => Backend::Redb,
    };
    let open = |b| {
        store::open(&StoreOptions {
            backend: b,
            data_dir: dir.path().to_owned(),
            redact: false,
            cache_bytes: None,
            url: None,
        })
    };
    drop(open(other).unwrap());
    match open(backend) {
        Err(StoreError::WrongBackend { found, .. }) => assert_eq!(found, other),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened an empty {backend} store next to a {other} one"),
    }
}

fn a_store_in_use_is_refused(backend: Backend) {
    let f = Fixture::new(backend);
    match store::open(&f.options) {
        // Named as a lock, so the operator hears that another webcare holds the store.
        Err(e) => assert!(matches!(e, StoreError::Locked { .. }), "{e:?}"),
        Ok(_) => panic!("two writers on one {backend} store"),
    }
}

fn redaction_keeps_personal_data_out_of_the_log(backend: Backend) {
    let f = Fixture::with(backend, true);
    let text = "Mijn paspoort is kwijt, mail me op ann@example.nl of bel 06-12345678";
    let receipt = f.accept(msg("a", "c1", "ann", text, monday()));
    let stored = f
        .store()
        .message(ChannelKind::Telegram, "a")
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.message.text,
        "Mijn paspoort is kwijt, mail me op [email] of bel [phone]"
    );
    // The decision was made on what the customer wrote.
    assert_eq!(stored.decision, receipt.decision);
}

fn rulebook_versions_are_kept_with_every_activation(backend: Backend) {
    let mut f = Fixture::new(backend);
    let t0 = monday();
    let files = rulebook().source.files();
    let version = rulebook().version.clone();
    assert!(f.store().rulebook_versions().unwrap().is_empty());
    assert_eq!(f.store().rulebook_version(&version).unwrap(), None);

    assert!(
        f.store()
            .save_rulebook_version(&version, &files, "ingest", t0)
            .unwrap(),
        "new version: files stored"
    );
    // The same version again only gets an activation; its files stay the first ones.
    let other_files = vec![webcare_engine::store::RulebookFile {
        role: "rulebook".into(),
        path: "elsewhere.toml".into(),
        text: "changed".into(),
    }];
    assert!(
        !f.store()
            .save_rulebook_version(&version, &other_files, "lead", t0 + Duration::hours(1))
            .unwrap()
    );
    store::save_rulebook(&**f.store(), rulebook(), "run", t0 + Duration::hours(2)).unwrap();
    f.store()
        .save_rulebook_version(
            "0123456789ab",
            &other_files,
            "lead",
            t0 + Duration::hours(3),
        )
        .unwrap();

    f.reopen();
    assert_eq!(f.store().rulebook_version(&version).unwrap(), Some(files));
    let versions = f.store().rulebook_versions().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].version, version);
    let by: Vec<&str> = versions[0]
        .activations
        .iter()
        .map(|a| a.by.as_str())
        .collect();
    assert_eq!(by, ["ingest", "lead", "run"]);
    assert_eq!(versions[0].activations[0].at, t0);
    assert_eq!(versions[1].version, "0123456789ab");
    assert_eq!(versions[1].activations.len(), 1);

    // A stored version compiles again to the rulebook that made the decisions.
    let stored = f.store().rulebook_version(&version).unwrap().unwrap();
    let again =
        Rulebook::compile(webcare_engine::RulebookSource::from_files(&stored).unwrap()).unwrap();
    assert_eq!(again.version, version);
}

fn the_crisis_switch_is_kept_and_audited(backend: Backend) {
    let mut f = Fixture::new(backend);
    let t0 = monday();
    assert_eq!(
        f.store().crisis_switch().unwrap(),
        None,
        "follows the rulebook"
    );

    f.store()
        .set_crisis_switch(Some(true), "admin (lead-anna)", t0)
        .unwrap();
    assert_eq!(f.store().crisis_switch().unwrap(), Some(true));
    f.reopen();
    assert_eq!(f.store().crisis_switch().unwrap(), Some(true), "kept");

    f.store()
        .set_crisis_switch(Some(false), "lead-bob", t0 + Duration::minutes(1))
        .unwrap();
    assert_eq!(f.store().crisis_switch().unwrap(), Some(false));
    f.reopen();
    assert_eq!(f.store().crisis_switch().unwrap(), Some(false), "kept");

    f.store()
        .set_crisis_switch(None, "admin", t0 + Duration::minutes(2))
        .unwrap();
    assert_eq!(f.store().crisis_switch().unwrap(), None);
    f.reopen();
    assert_eq!(f.store().crisis_switch().unwrap(), None, "kept");

    let switches: Vec<(String, String)> = f
        .store()
        .audit_log(None, 100)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "crisis.switch")
        .map(|a| (a.actor, a.subject))
        .collect();
    let expected = [
        ("admin (lead-anna)", "on"),
        ("lead-bob", "off"),
        ("admin", "rulebook"),
    ]
    .map(|(actor, subject)| (actor.to_owned(), subject.to_owned()));
    assert_eq!(switches, expected);
}

fn long_conversations_keep_their_messages_in_order_through_deletes(backend: Backend) {
    // More messages than a conversation record lists itself, so older numbers move to blocks;
    // deletes then reach into the blocks.
    let f = Fixture::new(backend);
    let t0 = monday();
    let mut ids = Vec::new();
    for i in 0..150 {
        let author = if i % 3 == 0 { "ann" } else { "bob" };
        let id = format!("g{i:03}");
        f.accept(msg(
            &id,
            "group",
            author,
            QUESTION,
            t0 + Duration::seconds(i),
        ));
        ids.push((id, author));
    }
    let listed = |f: &Fixture| -> Vec<String> {
        f.store()
            .conversation_messages(ChannelKind::Telegram, "group")
            .unwrap()
            .into_iter()
            .map(|m| m.message.id)
            .collect()
    };
    let all: Vec<String> = ids.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(listed(&f), all);
    assert_eq!(
        f.store()
            .conversation_outbox(ChannelKind::Telegram, "group")
            .unwrap()
            .len(),
        150
    );

    let report = f.store().forget_author("ann", "dpo", t0).unwrap();
    assert_eq!(report.messages, 50);
    assert_eq!(report.conversations, 0);
    let bobs: Vec<String> = ids
        .iter()
        .filter(|(_, a)| *a == "bob")
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(listed(&f), bobs);
    // Replies to ann's messages are still owed, and still listed with the conversation.
    assert_eq!(
        f.store()
            .conversation_outbox(ChannelKind::Telegram, "group")
            .unwrap()
            .len(),
        150
    );

    // Retention takes the oldest 60 seconds' worth (40 of bob's messages).
    let report = f
        .store()
        .purge_before(t0 + Duration::seconds(60), "retention", t0)
        .unwrap();
    assert_eq!(report.messages, 40);
    assert_eq!(listed(&f), bobs[40..].to_vec());
    assert_eq!(f.store().stats().unwrap().messages, 60);
    let history: Vec<String> = store::history(&**f.store(), None)
        .map(|m| m.unwrap().message.id)
        .collect();
    assert_eq!(history, bobs[40..].to_vec());

    // New messages after the deletes still land in order.
    f.accept(msg(
        "late",
        "group",
        "bob",
        QUESTION,
        t0 + Duration::hours(1),
    ));
    assert_eq!(listed(&f).last().map(String::as_str), Some("late"));
    assert!(
        f.store()
            .message(ChannelKind::Telegram, "g000")
            .unwrap()
            .is_none()
    );
    assert!(
        f.store()
            .message(ChannelKind::Telegram, "g149")
            .unwrap()
            .is_some()
    );
}

// --- the inbox's records (issue 5) -----------------------------------------------------------

fn user(login: &str, role: store::Role, teams: &[&str]) -> store::User {
    store::User {
        login: login.into(),
        name: login.to_uppercase(),
        role,
        teams: teams.iter().map(|t| (*t).to_owned()).collect(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: monday(),
    }
}

/// A person's inbox language is theirs, not their browser's: kept in the store, across a
/// reopen, and gone with the person.
fn a_users_language_is_kept_and_removed_with_them(backend: Backend) {
    let mut f = Fixture::new(backend);
    let t0 = monday();
    let anna = user("anna", store::Role::Agent, &["webcare"]);
    f.store().put_user(anna.clone(), "admin", t0).unwrap();
    assert_eq!(
        f.store().user_language("anna").unwrap(),
        None,
        "not chosen yet"
    );
    assert!(f.store().set_user_language("anna", "nl").unwrap());
    assert!(!f.store().set_user_language("nobody", "nl").unwrap());
    f.reopen();
    assert_eq!(
        f.store().user_language("anna").unwrap().as_deref(),
        Some("nl")
    );
    // Changing her teams keeps her language.
    let mut moved = anna.clone();
    moved.teams = vec!["communicatie".into()];
    f.store().put_user(moved, "admin", t0).unwrap();
    assert_eq!(
        f.store().user_language("anna").unwrap().as_deref(),
        Some("nl")
    );
    // Removed and added again, she starts from her browser's language.
    assert!(f.store().remove_user("anna", "admin", t0).unwrap());
    f.store().put_user(anna, "admin", t0).unwrap();
    assert_eq!(f.store().user_language("anna").unwrap(), None);
}

fn users_and_api_tokens_are_stored_and_audited(backend: Backend) {
    let mut f = Fixture::new(backend);
    let t0 = monday();
    let anna = user("anna", store::Role::Agent, &["webcare"]);
    f.store().put_user(anna.clone(), "admin", t0).unwrap();
    f.store()
        .put_user(user("dana", store::Role::Lead, &[]), "admin", t0)
        .unwrap();
    assert_eq!(f.store().user("anna").unwrap(), Some(anna.clone()));
    assert_eq!(f.store().user("nobody").unwrap(), None);
    let digest = [7u8; 32];
    f.store().add_api_token("anna", digest, t0).unwrap();
    assert!(matches!(
        f.store().add_api_token("nobody", [1; 32], t0),
        Err(CaseError::NoSuchUser(login)) if login == "nobody"
    ));
    f.reopen();
    let logins: Vec<String> = f
        .store()
        .users()
        .unwrap()
        .into_iter()
        .map(|u| u.login)
        .collect();
    assert_eq!(logins, ["anna", "dana"]);
    assert_eq!(f.store().user_by_token(digest).unwrap(), Some(anna));
    assert_eq!(f.store().user_by_token([8; 32]).unwrap(), None);
    let audit = f.store().audit_log(None, 100).unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["user.add", "user.add", "user.token"]);
    assert!(
        audit.iter().all(|a| !a.details.contains("argon2")),
        "no hash in the log"
    );

    // Revoking takes every token of one person, and only theirs.
    let second = [9u8; 32];
    f.store().add_api_token("anna", second, t0).unwrap();
    f.store().add_api_token("dana", [5; 32], t0).unwrap();
    assert_eq!(f.store().revoke_api_tokens("anna", "admin", t0).unwrap(), 2);
    assert_eq!(f.store().user_by_token(digest).unwrap(), None);
    assert_eq!(f.store().user_by_token(second).unwrap(), None);
    assert!(f.store().user("anna").unwrap().is_some());
    assert!(f.store().user_by_token([5; 32]).unwrap().is_some());
    assert!(matches!(
        f.store().revoke_api_tokens("nobody", "admin", t0),
        Err(CaseError::NoSuchUser(_))
    ));

    // Removing a person takes their tokens too; it survives reopening; both are audited.
    assert!(f.store().remove_user("dana", "admin", t0).unwrap());
    assert!(!f.store().remove_user("dana", "admin", t0).unwrap());
    f.reopen();
    assert_eq!(f.store().user("dana").unwrap(), None);
    assert_eq!(f.store().user_by_token([5; 32]).unwrap(), None);
    let logins: Vec<String> = f
        .store()
        .users()
        .unwrap()
        .into_iter()
        .map(|u| u.login)
        .collect();
    assert_eq!(logins, ["anna"]);
    let audit = f.store().audit_log(None, 100).unwrap();
    let last: Vec<(&str, &str, &str)> = audit
        .iter()
        .rev()
        .take(2)
        .map(|a| (a.action.as_str(), a.subject.as_str(), a.details.as_str()))
        .collect();
    assert_eq!(
        last,
        [
            ("user.remove", "user dana", "1 API tokens revoked"),
            ("user.revoke", "user anna", "2 API tokens"),
        ]
    );
}

fn inbox_work_notes_replies_reassign_and_breaches(backend: Backend) {
    let mut f = Fixture::new(backend);
    let t0 = monday();
    let first = f.accept(msg("k1", "c1", "ann", COMPLAINT, t0));
    let id = first.escalation.unwrap();
    let esc = f.store().escalation(id).unwrap().unwrap();
    let deadline = esc.sla_deadline.unwrap();
    assert_eq!(
        f.store().escalation_work(id).unwrap(),
        store::EscalationWork::default()
    );

    // A note is internal: no outbox entry, its text not in the audit log.
    let work = f
        .store()
        .add_escalation_note(id, "anna", "called the waste team", t0)
        .unwrap();
    assert_eq!(work.notes[0].text, "called the waste team");
    assert!(matches!(
        f.store().add_escalation_note(999, "anna", "x", t0),
        Err(CaseError::NoSuchEscalation(999))
    ));

    // A breach applies once, only while its deadline is the escalation's deadline.
    let breach = store::SlaBreach {
        escalation: id,
        deadline,
        from_team: esc.team.clone(),
        to_team: "webcare_leads".into(),
        from_priority: esc.priority,
        to_priority: Priority::Urgent,
        next_deadline: Some(deadline + Duration::hours(1)),
        at: deadline + Duration::minutes(1),
    };
    let stale = store::SlaBreach {
        deadline: deadline - Duration::minutes(1),
        ..breach.clone()
    };
    assert_eq!(f.store().record_sla_breach(stale).unwrap(), None);
    let moved = f
        .store()
        .record_sla_breach(breach.clone())
        .unwrap()
        .unwrap();
    assert_eq!(moved.team, "webcare_leads");
    assert_eq!(moved.priority, Priority::Urgent);
    assert_eq!(moved.sla_deadline, breach.next_deadline);
    f.reopen();
    assert_eq!(
        f.store().record_sla_breach(breach.clone()).unwrap(),
        None,
        "handled once"
    );
    assert_eq!(
        f.store().escalation_work(id).unwrap().breaches,
        vec![breach]
    );

    // Reassigning moves it and sets the new deadline; a claim is released.
    f.store().claim_escalation(id, "dana", t0).unwrap();
    let later = deadline + Duration::hours(3);
    let esc = f
        .store()
        .reassign_escalation(id, "legal", Some(later), "dana", t0)
        .unwrap();
    assert_eq!(
        (esc.team.as_str(), esc.sla_deadline),
        ("legal", Some(later))
    );
    assert_eq!(esc.status, EscalationStatus::Open);

    // The first reply claims it, meets the SLA and hands the conversation to a human.
    let (esc, entry) = f
        .store()
        .reply_to_escalation(id, "anna", "We are on it.", t0 + Duration::minutes(5))
        .unwrap();
    assert_eq!(esc.status, EscalationStatus::Claimed { by: "anna".into() });
    assert_eq!(esc.sla_deadline, None, "the first response meets the SLA");
    assert_eq!(
        (
            entry.conversation.as_str(),
            entry.in_reply_to.as_str(),
            entry.text.as_str()
        ),
        ("c1", "k1", "We are on it.")
    );
    assert_eq!(
        f.store().outbox_entry(entry.id).unwrap().unwrap().status,
        OutboxStatus::Pending
    );
    let conv = f
        .store()
        .conversation(ChannelKind::Telegram, "c1")
        .unwrap()
        .unwrap();
    assert_eq!(conv.state, ConversationState::Human);
    assert!(matches!(
        f.store().reply_to_escalation(id, "bram", "me too", t0),
        Err(CaseError::AlreadyClaimed { by, .. }) if by == "anna"
    ));
    // During the handoff every customer message joins the escalation, whatever its decision.
    let more = f.accept(msg("k2", "c1", "ann", QUESTION, t0 + Duration::minutes(6)));
    assert_eq!(more.escalation, Some(id));
    assert!(
        more.decision.action.reply().is_none(),
        "the bot stays silent"
    );
    let work = f.store().escalation_work(id).unwrap();
    assert_eq!(work.first_response_at, Some(t0 + Duration::minutes(5)));
    assert_eq!(work.replies.len(), 1);
    assert_eq!(work.replies[0].outbox, entry.id);
    // A reassignment after the first response keeps the SLA met, and the next-response
    // deadline the customer's follow-up started.
    let waiting = f.store().escalation(id).unwrap().unwrap();
    assert_eq!(waiting.case.waiting_since, Some(t0 + Duration::minutes(6)));
    let esc = f
        .store()
        .reassign_escalation(id, "webcare", Some(later), "dana", t0)
        .unwrap();
    assert_eq!(esc.sla_deadline, waiting.sla_deadline);
    assert!(esc.sla_deadline.is_some());
    assert_eq!(esc.sla(t0 + Duration::days(30)).name(), "met");

    let audit = f.store().audit_log(None, 100).unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    for wanted in [
        "escalation.note",
        "escalation.breach",
        "escalation.reassign",
        "escalation.reply",
    ] {
        assert!(actions.contains(&wanted), "{wanted} in {actions:?}");
    }
    for entry in &audit {
        assert!(!entry.details.contains("waste team") && !entry.details.contains("on it"));
    }

    // Resolved work is closed to every change; forgetting the author erases the notes too.
    f.store().resolve_escalation(id, "anna", t0).unwrap();
    assert!(matches!(
        f.store().reply_to_escalation(id, "anna", "x", t0),
        Err(CaseError::AlreadyResolved(_))
    ));
    assert!(matches!(
        f.store().reassign_escalation(id, "legal", None, "anna", t0),
        Err(CaseError::AlreadyResolved(_))
    ));
    f.store().forget_author("ann", "privacy", t0).unwrap();
    assert_eq!(f.store().escalation(id).unwrap(), None);
    assert_eq!(
        f.store().escalation_work(id).unwrap(),
        store::EscalationWork::default()
    );
}

/// The embedded rulebook with one keyword changed: `paspoort*` becomes `paspoort`, so plurals
/// ("paspoorten") no longer match the passport topic.
fn candidate() -> &'static Rulebook {
    static CANDIDATE: OnceLock<Rulebook> = OnceLock::new();
    CANDIDATE.get_or_init(|| {
        let mut source = RulebookSource::embedded();
        // Exact, so plurals no longer match (not even as a stem).
        source.topics.text = source.topics.text.replacen(
            "[\"paspoort*\", \"id kaart*\"",
            "[\"=paspoort\", \"id kaart*\"",
            1,
        );
        Rulebook::compile(source).expect("the candidate compiles")
    })
}

const PASSPORTS: &str = "Mijn paspoorten zijn verlopen, wat nu?";

fn accept_in(f: &Fixture, mode: Mode, m: Inbound) -> store::IntakeReceipt {
    let now = m.received_at;
    Intake::new(rulebook(), &**f.store())
        .with_mode(mode)
        .with_shadow(Some(candidate()))
        .accept(m, now)
        .unwrap()
}

fn modes_choose_the_effects_of_a_decision(backend: Backend) {
    let mut f = Fixture::new(backend);
    // listen: stored and decided, but no reply queued and no escalation opened.
    let heard = accept_in(&f, Mode::Listen, msg("l1", "c1", "ann", FIRE, monday()));
    assert_eq!(heard.decision.action.name(), "escalate");
    assert_eq!((heard.escalation, heard.outbox), (None, None));
    assert_eq!(heard.mode, Mode::Listen);
    let asked = accept_in(&f, Mode::Listen, msg("l2", "c1", "ann", QUESTION, monday()));
    assert_eq!(asked.decision.action.name(), "answer");
    assert_eq!(asked.outbox, None);
    assert!(f.store().open_escalations().unwrap().is_empty());
    let conv = f
        .store()
        .conversation(ChannelKind::Telegram, "c1")
        .unwrap()
        .unwrap();
    assert_eq!((conv.messages, conv.auto_replies), (2, 0));
    assert_eq!(conv.open_escalation, None);

    // shadow: the escalation reaches the inbox, the holding reply and answers are not sent.
    let fire = accept_in(&f, Mode::Shadow, msg("s1", "c2", "bob", FIRE, monday()));
    assert_eq!(fire.outbox, None);
    let id = fire.escalation.expect("shadow mode escalates");
    assert_eq!(f.store().open_escalations().unwrap().len(), 1);
    let answer = accept_in(&f, Mode::Shadow, msg("s2", "c3", "bob", QUESTION, monday()));
    assert_eq!((answer.escalation, answer.outbox), (None, None));

    // live: as ever.
    let live = accept_in(&f, Mode::Live, msg("v1", "c4", "cas", QUESTION, monday()));
    assert!(live.outbox.is_some());
    assert_eq!(f.store().stats().unwrap().pending_outbox, 1);
    assert_eq!(
        f.store()
            .conversation_outbox(ChannelKind::Telegram, "c3")
            .unwrap(),
        []
    );

    // The mode is kept with the message, through a restart, and a repeat gets the first one.
    f.reopen();
    for (id, mode) in [
        ("l1", Mode::Listen),
        ("s1", Mode::Shadow),
        ("v1", Mode::Live),
    ] {
        let stored = f
            .store()
            .message(ChannelKind::Telegram, id)
            .unwrap()
            .unwrap();
        assert_eq!(stored.mode, mode, "{id}");
    }
    let again = accept_in(&f, Mode::Live, msg("l1", "c1", "ann", FIRE, monday()));
    assert!(again.duplicate);
    assert_eq!((again.mode, again.outbox), (Mode::Listen, None));
    assert_eq!(f.store().escalation(id).unwrap().unwrap().messages, ["s1"]);
}

fn shadow_decisions_are_stored_beside_the_live_ones_and_erased_with_them(backend: Backend) {
    let mut f = Fixture::new(backend);
    let t0 = monday();
    let same = accept_in(&f, Mode::Live, msg("m1", "c1", "ann", QUESTION, t0));
    let changed = accept_in(
        &f,
        Mode::Live,
        msg("m2", "c2", "bob", PASSPORTS, t0 + Duration::minutes(1)),
    );
    // Without a shadow rulebook nothing is stored beside the decision.
    let plain = f.accept(msg("m3", "c3", "bob", QUESTION, t0 + Duration::minutes(2)));
    // The shadow decision has no effect: one reply each, from the live decision.
    assert!(same.outbox.is_some() && changed.outbox.is_some());
    assert_eq!(f.store().stats().unwrap().pending_outbox, 3);

    f.reopen();
    let history: Vec<_> = store::history(&**f.store(), None)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(history.len(), 3);
    let shadow = |i: usize| history[i].shadow.clone();
    let first = shadow(0).expect("a shadow decision for m1");
    assert_eq!(first.message_id, "m1");
    assert_eq!(first.diagnostics.rulebook, candidate().version);
    assert_eq!(first.action, same.decision.action);
    let second = shadow(1).expect("a shadow decision for m2");
    assert_eq!(second.message_id, "m2");
    assert_ne!(
        second.topic_ids().collect::<Vec<_>>(),
        changed.decision.topic_ids().collect::<Vec<_>>()
    );
    assert_eq!(history[1].decision, changed.decision);
    assert_eq!(shadow(2), None);
    assert_eq!(history[2].seq, plain.seq);

    // A repeat keeps the first shadow decision.
    let again = accept_in(&f, Mode::Live, msg("m2", "c2", "bob", QUESTION, t0));
    assert!(again.duplicate);
    let stored = f
        .store()
        .message(ChannelKind::Telegram, "m2")
        .unwrap()
        .unwrap();
    assert_eq!(stored.shadow, Some(second));

    // Forgetting an author and retention take the shadow decisions with the messages.
    f.store().forget_author("bob", "dpo", t0).unwrap();
    assert_eq!(
        f.store().message(ChannelKind::Telegram, "m2").unwrap(),
        None
    );
    f.store()
        .purge_before(t0 + Duration::days(1), "retention", t0 + Duration::days(1))
        .unwrap();
    assert_eq!(store::history(&**f.store(), None).count(), 0);
}

fn report_scan_reads_a_period_in_brief_with_reply_states(backend: Backend) {
    let f = Fixture::new(backend);
    let t0 = monday();
    let minutes = |n: i64| t0 + Duration::minutes(n);
    f.accept(msg("old", "c0", "oma", QUESTION, t0 - Duration::days(2)));
    let a = f.accept(msg("a", "c1", "ann", QUESTION, t0)).seq;
    let b = f.accept(msg("b", "c2", "bea", QUESTION, minutes(1))).seq;
    let c = f.accept(msg("c", "c3", "cas", QUESTION, minutes(2))).seq;
    f.accept(msg("d", "c4", "dik", FIRE, minutes(3)));
    let e = f.accept(msg("e", "c1", "ann", QUESTION, minutes(4))).seq;
    f.accept(msg("late", "c5", "lia", QUESTION, t0 + Duration::days(2)));
    f.store().outbox_sent(b, minutes(2)).unwrap();
    f.store()
        .outbox_failed(c, "chat not found", None, minutes(3))
        .unwrap();
    f.store()
        .outbox_failed(e, "429", Some(minutes(9)), minutes(5))
        .unwrap();
    let agent = f
        .store()
        .queue_reply(store::NewReply {
            channel: ChannelKind::Telegram,
            conversation: "c1".into(),
            in_reply_to: "a".into(),
            text: "Ik kijk ernaar.".into(),
            actor: "agent".into(),
            now: minutes(6),
        })
        .unwrap();

    let mut items = Vec::new();
    f.store()
        .report_scan(
            t0 - Duration::hours(1),
            t0 + Duration::days(1),
            true,
            &mut |item| {
                items.push(format!("{item:?}"));
            },
        )
        .unwrap();
    // The expected items: the agent's reply first, then every message of the period in intake
    // order, each as its full record says, with its own reply's status.
    let mut expected = vec![format!(
        "{:?}",
        store::ReportItem::Reply(f.store().outbox_entry(agent.id).unwrap().unwrap())
    )];
    let ids = ["a", "b", "c", "d", "e"];
    let stored: Vec<_> = ids
        .iter()
        .map(|id| {
            f.store()
                .message(ChannelKind::Telegram, id)
                .unwrap()
                .unwrap()
        })
        .collect();
    for s in &stored {
        let mut brief = store::MessageBrief::of(s);
        brief.reply = f.store().outbox_entry(s.seq).unwrap().map(|e| e.status);
        expected.push(format!("{:?}", store::ReportItem::Message(brief)));
    }
    assert_eq!(items, expected);
    assert!(items[1].contains("reply: Some(Pending)"), "{}", items[1]);
    assert!(items[2].contains("Sent"), "{}", items[2]);
    assert!(items[3].contains("reply: Some(Dead)"), "{}", items[3]);
    assert!(items[5].contains("reply: Some(Pending)"), "{}", items[5]);
    assert!(a < b && b < c && c < e);

    // Without replies: the same, every message's `reply` empty.
    let mut bare = Vec::new();
    f.store()
        .report_scan(
            t0 - Duration::hours(1),
            t0 + Duration::days(1),
            false,
            &mut |item| bare.push(format!("{item:?}")),
        )
        .unwrap();
    assert_eq!(bare[0], expected[0]);
    for s in &stored {
        let brief = store::MessageBrief::of(s);
        assert!(bare.contains(&format!("{:?}", store::ReportItem::Message(brief))));
    }
    assert_eq!(bare.len(), expected.len());

    // Nothing received in the range: nothing at all, not even the agent's reply.
    let mut none = 0;
    f.store()
        .report_scan(
            t0 + Duration::days(3),
            t0 + Duration::days(4),
            true,
            &mut |_| none += 1,
        )
        .unwrap();
    assert_eq!(none, 0);
}

/// A batch is one transaction with the same outcome as one message at a time: a repeat inside
/// it is a duplicate, and a second message of a conversation sees the first in its facts.
fn a_batch_is_taken_in_as_one_message_at_a_time(backend: Backend) {
    let f = Fixture::new(backend);
    let t0 = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
    let batch = vec![
        msg("a1", "conv-a", "ann", QUESTION, t0),
        msg("b1", "conv-b", "bob", QUESTION, t0),
        msg("a2", "conv-a", "ann", QUESTION, t0 + Duration::minutes(1)),
        msg("a1", "conv-a", "ann", QUESTION, t0),
    ];
    // Each receipt's message and whether it was a repeat, in the batch's order.
    let take_in = |batch, now| -> Vec<(String, bool)> {
        Intake::new(rulebook(), &**f.store())
            .accept_batch(batch, now)
            .unwrap()
            .into_iter()
            .map(|r| (r.decision.message_id, r.duplicate))
            .collect()
    };
    let ids = take_in(batch, t0 + Duration::minutes(2));
    assert_eq!(
        ids,
        pairs(&[("a1", false), ("b1", false), ("a2", false), ("a1", true)])
    );
    let a2 = f
        .store()
        .message(ChannelKind::Telegram, "a2")
        .unwrap()
        .unwrap();
    assert_eq!(a2.facts.messages_today, 1, "a2 saw a1");
    assert_eq!(f.store().stats().unwrap().messages, 3);
    let one_by_one = Fixture::new(backend);
    for id in ["a1", "b1"] {
        let conversation = if id == "a1" { "conv-a" } else { "conv-b" };
        let author = if id == "a1" { "ann" } else { "bob" };
        Intake::new(rulebook(), &**one_by_one.store())
            .accept(msg(id, conversation, author, QUESTION, t0), t0)
            .unwrap();
    }
    let a1 = one_by_one
        .store()
        .conversation(ChannelKind::Telegram, "conv-a")
        .unwrap()
        .unwrap();
    let batched = f
        .store()
        .conversation(ChannelKind::Telegram, "conv-a")
        .unwrap()
        .unwrap();
    assert_eq!(batched.messages, a1.messages + 1);
    assert_eq!(batched.auto_replies, a1.auto_replies + 1);
    // Repeats among new messages (one transaction: five conversations) keep their places.
    let batch = vec![
        msg("c1", "conv-c", "cas", QUESTION, t0),
        msg("b1", "conv-b", "bob", QUESTION, t0),
        msg("d1", "conv-d", "dan", QUESTION, t0),
        msg("a2", "conv-a", "ann", QUESTION, t0 + Duration::minutes(1)),
        msg("e1", "conv-e", "eve", QUESTION, t0),
    ];
    let ids = take_in(batch, t0 + Duration::minutes(3));
    assert_eq!(
        ids,
        pairs(&[
            ("c1", false),
            ("b1", true),
            ("d1", false),
            ("a2", true),
            ("e1", false)
        ])
    );
}

/// A batch with many messages of each conversation, new ones and ones already stored, decides
/// every message with the facts the ones before it leave (complaints counted, automatic replies
/// counted, a new day), exactly as taking them in one at a time does: the same decisions, facts,
/// escalations and conversations.
fn a_batch_decides_each_message_with_the_facts_of_the_ones_before(backend: Backend) {
    let t0 = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
    let talks = [
        (
            "conv-a",
            "ann",
            vec![
                QUESTION, COMPLAINT, COMPLAINT, COMPLAINT, QUESTION, COMPLAINT,
            ],
        ),
        (
            "conv-b",
            "bob",
            vec![FIRE, QUESTION, FIRE, QUESTION, COMPLAINT],
        ),
        ("conv-c", "cas", vec![QUESTION; 8]),
    ];
    let mut batch = Vec::new();
    for turn in 0..8 {
        for (conversation, author, texts) in &talks {
            if let Some(text) = texts.get(turn) {
                // The fifth turn is the next day: the day's counter starts again.
                let day = if turn >= 4 {
                    Duration::days(1)
                } else {
                    Duration::zero()
                };
                let at = t0 + day + Duration::minutes(batch.len() as i64);
                let id = format!("{conversation}-{turn}");
                batch.push(msg(&id, conversation, author, text, at));
            }
        }
    }
    let now = t0 + Duration::days(2);
    let (batched, one_by_one) = (Fixture::new(backend), Fixture::new(backend));
    // Two of the conversations exist before the batch (the day before), one starts in it.
    for f in [&batched, &one_by_one] {
        for (conversation, author) in [("conv-a", "ann"), ("conv-c", "cas")] {
            let id = format!("{conversation}-before");
            f.accept(msg(
                &id,
                conversation,
                author,
                QUESTION,
                t0 - Duration::days(1),
            ));
        }
    }
    let receipts = Intake::new(rulebook(), &**batched.store())
        .accept_batch(batch.clone(), now)
        .unwrap();
    let intake = Intake::new(rulebook(), &**one_by_one.store());
    let singles: Vec<_> = batch
        .iter()
        .map(|m| intake.accept(m.clone(), now).unwrap())
        .collect();
    let outcome = |r: &store::IntakeReceipt| {
        (
            r.decision.message_id.clone(),
            r.decision.action.name(),
            r.escalation,
            r.outbox.is_some(),
        )
    };
    assert_eq!(
        receipts.iter().map(outcome).collect::<Vec<_>>(),
        singles.iter().map(outcome).collect::<Vec<_>>()
    );
    for m in &batch {
        let facts = |f: &Fixture| f.store().message(m.channel, &m.id).unwrap().unwrap().facts;
        assert_eq!(
            facts(&batched),
            facts(&one_by_one),
            "the facts {} was decided with",
            m.id
        );
    }
    for (conversation, _, _) in &talks {
        let read = |f: &Fixture| {
            let c = f
                .store()
                .conversation(ChannelKind::Telegram, conversation)
                .unwrap()
                .unwrap();
            (
                c.messages,
                c.today,
                c.messages_today,
                c.auto_replies,
                c.recent_complaints,
                c.open_escalation,
            )
        };
        assert_eq!(read(&batched), read(&one_by_one), "{conversation}");
    }
    // The facts moved: later messages saw what earlier ones of the batch did.
    let last = |id: &str| {
        batched
            .store()
            .message(ChannelKind::Telegram, id)
            .unwrap()
            .unwrap()
            .facts
    };
    assert_eq!(last("conv-a-3").complaints_24h, 2);
    assert!(last("conv-c-7").auto_replies > 0);
    assert_eq!(last("conv-c-3").messages_today, 3);
    assert_eq!(last("conv-c-4").messages_today, 0, "a new day");
}

fn pairs(expected: &[(&str, bool)]) -> Vec<(String, bool)> {
    expected
        .iter()
        .map(|(id, d)| ((*id).to_owned(), *d))
        .collect()
}

/// A record decided from a view of the store, with the facts that view gave.
fn record_of(m: Inbound, facts: store::ConversationFacts, today: NaiveDate) -> IntakeRecord {
    let decision = rulebook().decide(
        &m,
        &DecideContext {
            conversation: facts.clone(),
            crisis_mode: None,
        },
    );
    IntakeRecord {
        message: m,
        decision,
        facts,
        today,
        sla_deadline: None,
        now: monday(),
        mode: Default::default(),
        shadow: None,
        reply_inline: false,
        case: Default::default(),
    }
}

/// `batch` through [`Store::decide_and_record_all`], with `meanwhile` run once, after the
/// batch's lookups and before its first decision: what another caller stores in between.
fn decided_while(
    f: &Fixture,
    batch: Vec<(Inbound, NaiveDate)>,
    meanwhile: impl FnOnce(),
) -> Vec<store::IntakeReceipt> {
    let mut meanwhile = Some(meanwhile);
    f.store()
        .decide_and_record_all(batch, &mut |m, facts, today| {
            if let Some(meanwhile) = meanwhile.take() {
                meanwhile();
            }
            record_of(m, facts, today)
        })
        .unwrap()
}

/// The lookups of a batch come from one view of the store taken before its messages are
/// decided. Whatever is stored after that view, by another caller or earlier in the same
/// transaction, still counts: a delivery stored meanwhile is a duplicate, and a message of a
/// conversation that grew meanwhile adds to it rather than starting it again.
fn what_is_stored_while_a_batch_is_decided_still_counts(backend: Backend) {
    let f = Fixture::new(backend);
    let at = monday();
    let today = at.date_naive();
    // Committed by another caller while the batch is decided, after its lookups.
    let batch = vec![
        (msg("m1", "c1", "ann", QUESTION, at), today),
        (msg("m2", "c2", "bob", QUESTION, at), today),
    ];
    let receipts = decided_while(&f, batch, || {
        f.accept(msg("m1", "c9", "eve", FIRE, at));
        f.accept(msg("m0", "c2", "bob", QUESTION, at));
    });
    assert!(receipts[0].duplicate, "m1 was stored meanwhile");
    assert!(!receipts[1].duplicate);
    let c2 = f
        .store()
        .conversation(ChannelKind::Telegram, "c2")
        .unwrap()
        .unwrap();
    assert_eq!(c2.messages, 2, "m2 joined the conversation m0 started");
    // Stored earlier in the same transaction: one delivery under two conversations.
    let batch = vec![
        (msg("m3", "c3", "cas", QUESTION, at), today),
        (msg("m3", "c4", "cas", FIRE, at), today),
    ];
    let receipts = f
        .store()
        .decide_and_record_all(batch, &mut record_of)
        .unwrap();
    assert!(!receipts[0].duplicate);
    assert!(receipts[1].duplicate, "m3 was stored just before");
    assert_eq!(f.store().stats().unwrap().messages, 4);
    assert!(
        f.store()
            .conversation(ChannelKind::Telegram, "c4")
            .unwrap()
            .is_none()
    );
    // Written earlier in the same transaction (as by another caller sharing the commit): a
    // conversation's record, which the next message of it adds to.
    let batch = vec![
        (msg("m4", "c5", "dan", QUESTION, at), today),
        (msg("m5", "c5", "dan", QUESTION, at), today),
    ];
    f.store()
        .decide_and_record_all(batch, &mut record_of)
        .unwrap();
    let c5 = f
        .store()
        .conversation(ChannelKind::Telegram, "c5")
        .unwrap()
        .unwrap();
    assert_eq!(c5.messages, 2, "m5 was added to what m4 started");
    // Stored long before the batch reached the store, with many commits in between: the
    // embedded writer remembers only the last 64 transactions' keys.
    let batch = vec![(msg("m6", "c6", "eve", QUESTION, at), today)];
    let receipts = decided_while(&f, batch, || {
        f.accept(msg("m6", "c7", "eve", FIRE, at));
        for i in 0..70 {
            f.accept(msg(
                &format!("x{i}"),
                &format!("cx{i}"),
                "eve",
                QUESTION,
                at,
            ));
        }
    });
    assert!(receipts[0].duplicate, "m6 was stored 71 commits before");
    assert_eq!(f.store().stats().unwrap().messages, 6 + 1 + 70);
}

/// Replies reach a conversation in the order queued: while its oldest pending reply waits for a
/// retry, the later ones wait too; other conversations are not held up.
fn a_retried_reply_holds_back_only_its_own_conversation(backend: Backend) {
    let f = Fixture::new(backend);
    let t0 = monday();
    let b0 = f
        .accept(msg("b0", "cb", "bob", QUESTION, t0))
        .outbox
        .unwrap();
    let b1 = f
        .accept(msg("b1", "cb", "bob", QUESTION, t0 + Duration::seconds(1)))
        .outbox
        .unwrap();
    let c0 = f
        .accept(msg("c0", "cc", "cas", QUESTION, t0))
        .outbox
        .unwrap();
    let later = t0 + Duration::seconds(2);
    let due = |at| -> Vec<u64> {
        f.store()
            .due_outbox(at, 10)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect()
    };
    assert_eq!(due(later), [b0, c0]);
    let retry_at = later + Duration::minutes(5);
    f.store()
        .outbox_failed(b0, "502", Some(retry_at), later)
        .unwrap();
    f.store().outbox_sent(c0, later).unwrap();
    assert!(due(later).is_empty(), "b1 waits for b0's retry");
    assert_eq!(due(retry_at), [b0]);
    f.store().outbox_sent(b0, retry_at).unwrap();
    assert_eq!(due(retry_at), [b1]);
}

/// A database whose record of applied migrations does not match this webcare's (edited by
/// hand, or a different program's tables) is refused with a clear error and left as it is.
fn a_tampered_schema_is_a_clear_error_and_is_left_alone() {
    let f = Fixture::new(Backend::Postgres);
    f.accept(msg("m1", "c1", "ann", QUESTION, monday()));
    let url = f.options.url.clone().unwrap();
    let mut db = ::postgres::Client::connect(url.expose(), ::postgres::NoTls).unwrap();
    db.execute("UPDATE schema_migrations SET checksum = 'edited'", &[])
        .unwrap();
    let error = match store::open(&f.options) {
        Ok(_) => panic!("a tampered schema must not open"),
        Err(e) => e,
    };
    let text = error.to_string();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert!(text.contains("migration 1"), "names the migration: {text}");
    assert!(text.contains("backup"), "says what to do: {text}");
    let n: i64 = db
        .query_one("SELECT count(*) FROM messages", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "never re-initialised");
}

/// The inbox's reads: many messages without their decisions in one go (in the order asked,
/// unknown ids left out), and every conversation an author wrote in, on any channel.
fn inbound_messages_and_an_authors_conversations(backend: Backend) {
    let f = Fixture::new(backend);
    f.accept(msg("m1", "c1", "ann", COMPLAINT, monday()));
    f.accept(msg("m2", "c2", "bob", QUESTION, monday()));
    let mut other = msg("w1", "wa1", "ann", FIRE, monday());
    other.channel = ChannelKind::Whatsapp;
    other
        .metadata
        .insert("display_name".into(), "Ann de Vries".into());
    f.accept(other);
    let keys = [
        (ChannelKind::Whatsapp, "w1".to_owned()),
        (ChannelKind::Telegram, "nope".to_owned()),
        (ChannelKind::Telegram, "m1".to_owned()),
        (ChannelKind::Whatsapp, "m1".to_owned()),
    ];
    let found = f.store().inbound_messages(&keys).unwrap();
    let ids: Vec<_> = found.iter().map(|m| (m.channel, m.id.as_str())).collect();
    assert_eq!(
        ids,
        [(ChannelKind::Whatsapp, "w1"), (ChannelKind::Telegram, "m1")]
    );
    assert_eq!(found[0].text, FIRE);
    assert_eq!(found[0].author, "ann");
    assert_eq!(found[0].metadata["display_name"], "Ann de Vries");
    assert_eq!(found[1].received_at, monday());
    assert!(f.store().inbound_messages(&[]).unwrap().is_empty());

    let mut ann: Vec<(&str, String)> = f
        .store()
        .author_conversations("ann")
        .unwrap()
        .into_iter()
        .map(|(channel, conversation)| (channel.as_str(), conversation))
        .collect();
    ann.sort();
    assert_eq!(
        ann,
        [
            ("telegram", "c1".to_owned()),
            ("whatsapp", "wa1".to_owned())
        ]
    );
    assert!(f.store().author_conversations("nobody").unwrap().is_empty());
}

const PRESS: &str = "Ik ben journalist van het Dagblad: kan de woordvoerder reageren op de klachten over het afval?";

fn survey() -> webcare_engine::case::satisfaction::SurveyAsk {
    webcare_engine::case::satisfaction::SurveyAsk {
        every: Duration::days(30),
        nl: "Hoe tevreden bent u? Antwoord met 1 tot 5.".into(),
        en: "How satisfied are you? Reply 1 to 5.".into(),
    }
}

/// The case state each backend keeps (issue 14): waiting on us and the next-response deadline,
/// the first-response SLA after the reply that stops the clock, a message for another team in
/// its own linked escalation, the satisfaction question and its answer, the customer's
/// last-asked time, reopening; all of it across a reopen of the store, and erased by `forget`.
fn case_state_is_stored_waiting_linked_satisfaction_and_reopening(backend: Backend) {
    let mut f = Fixture::new(backend);
    let t0 = monday();
    let at = |m: i64| t0 + Duration::minutes(m);
    let first = f.accept(msg("k1", "c1", "ann", COMPLAINT, t0));
    let a = first.escalation.unwrap();
    let esc = f.store().escalation(a).unwrap().unwrap();
    assert_eq!(esc.case.opened_at, Some(t0));
    assert_eq!(esc.case.first_response_due, esc.sla_deadline);
    assert!(esc.sla_deadline.is_some());
    assert_eq!(esc.case.waiting_since, Some(t0));
    assert_eq!(esc.case.author.as_deref(), Some("ann"));
    assert!(!esc.case.critical);

    // The reply stops the clock; the SLA is still known, and the history says so.
    let (esc, _) = f
        .store()
        .reply_to_escalation(a, "bob", "We kijken ernaar.", at(10))
        .unwrap();
    assert_eq!(esc.sla_deadline, None);
    assert_eq!(esc.case.first_response_at, Some(at(10)));
    assert_eq!(esc.case.first_response_by.as_deref(), Some("bob"));
    assert_eq!(esc.case.waiting_since, None);
    assert_eq!(esc.sla(at(600)).name(), "met");
    assert!(
        esc.history
            .iter()
            .any(|h| h.change.ends_with("first response, SLA met"))
    );

    // The customer writes again during the handoff: waiting, with a next-response deadline.
    f.accept(msg(
        "k2",
        "c1",
        "ann",
        "Hallo? Wanneer komen ze nou?",
        at(20),
    ));
    let esc = f.store().escalation(a).unwrap().unwrap();
    assert_eq!(esc.messages.len(), 2);
    assert_eq!(esc.case.waiting_since, Some(at(20)));
    assert!(esc.sla_deadline.is_some_and(|d| d > at(20)));
    let teams = rulebook().teams();
    let due = teams
        .get(&esc.team)
        .and_then(|t| t.sla_deadline(teams.local(at(20)), esc.priority))
        .map(|d| d.with_timezone(&Utc));
    assert_eq!(
        esc.sla_deadline, due,
        "the team's SLA for its priority, from when the customer wrote again"
    );

    // A journalist in the same conversation: Communications' own escalation, linked.
    let press = f.accept(msg("k3", "c1", "ann", PRESS, at(30)));
    let p = press.escalation.unwrap();
    assert_ne!(p, a, "not joined to the complaint");
    let pesc = f.store().escalation(p).unwrap().unwrap();
    assert_eq!(pesc.team, "communications");
    assert!(pesc.case.critical);
    let esc = f.store().escalation(a).unwrap().unwrap();
    assert!(
        esc.history
            .iter()
            .any(|h| h.change.contains(&format!("its own escalation {p}")))
    );
    let both: Vec<u64> = f
        .store()
        .conversation_escalations(ChannelKind::Telegram, "c1")
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(both, vec![a, p]);

    // Answering and resolving the complaint does not answer the press question; resolving
    // asks the customer for a score.
    let (esc, _) = f
        .store()
        .reply_to_escalation(a, "bob", "Morgen.", at(40))
        .unwrap();
    assert_eq!(esc.case.waiting_since, None);
    let esc = f
        .store()
        .resolve_and_ask(a, "bob", at(50), Some(survey()))
        .unwrap();
    let asked = esc.case.survey.clone().unwrap();
    assert_eq!((asked.asked_at, asked.agent.as_str()), (at(50), "bob"));
    let question = f.store().outbox_entry(asked.outbox).unwrap().unwrap();
    assert!(question.text.starts_with("Hoe tevreden"), "{question:?}");
    let pesc = f.store().escalation(p).unwrap().unwrap();
    assert_eq!(pesc.case.first_response_at, None);
    assert_eq!(pesc.status, EscalationStatus::Open);
    let conv = f
        .store()
        .conversation(ChannelKind::Telegram, "c1")
        .unwrap()
        .unwrap();
    assert!(conv.awaiting_score);
    assert_eq!(
        conv.open_escalation,
        Some(p),
        "the press case is still open"
    );

    // Kept across a reopen of the store.
    f.reopen();
    let answer = f.accept(msg("k4", "c1", "ann", "4", at(55)));
    assert_eq!(answer.decision.action.name(), "log");
    assert_eq!((answer.escalation, answer.outbox), (None, None));
    let esc = f.store().escalation(a).unwrap().unwrap();
    let answered = esc.case.survey.clone().unwrap();
    assert_eq!(
        (answered.score, answered.answered_at),
        (Some(4), Some(at(55)))
    );
    let conv = f
        .store()
        .conversation(ChannelKind::Telegram, "c1")
        .unwrap()
        .unwrap();
    assert!(!conv.awaiting_score);

    // Never twice to the same customer within the period, nor after a critical category.
    let other = f.accept(msg("k5", "c2", "ann", COMPLAINT, at(60)));
    let o = other.escalation.unwrap();
    let esc = f
        .store()
        .resolve_and_ask(o, "bob", at(70), Some(survey()))
        .unwrap();
    assert_eq!(esc.case.survey, None);
    let pesc = f
        .store()
        .resolve_and_ask(p, "carl", at(80), Some(survey()))
        .unwrap();
    assert_eq!(pesc.case.survey, None);

    // A complaint within the reopen period reopens the complaint: waiting, a new deadline.
    let again = f.accept(msg("k6", "c1", "ann", COMPLAINT, at(24 * 60)));
    assert_eq!(again.escalation, Some(a));
    let esc = f.store().escalation(a).unwrap().unwrap();
    assert_eq!(esc.status, EscalationStatus::Open);
    assert_eq!(esc.case.reopened, 1);
    assert_eq!(esc.case.waiting_since, Some(at(24 * 60)));
    assert!(esc.sla_deadline.is_some_and(|d| d > at(24 * 60)));
    assert_eq!(
        esc.sla(at(24 * 60)).name(),
        "met",
        "the first response stays met"
    );
    assert!(
        f.store()
            .open_escalations()
            .unwrap()
            .iter()
            .any(|e| e.id == a)
    );

    // `forget` erases when the customer was last asked: asked again at once afterwards.
    f.store()
        .forget_author("ann", "dpo", at(24 * 60 + 1))
        .unwrap();
    let fresh = f.accept(msg("k7", "c3", "ann", COMPLAINT, at(24 * 60 + 2)));
    let esc = f
        .store()
        .resolve_and_ask(
            fresh.escalation.unwrap(),
            "bob",
            at(24 * 60 + 3),
            Some(survey()),
        )
        .unwrap();
    assert!(esc.case.survey.is_some());
}

/// What the team is to hear of (an arrival, a follow-up after an answer, a reopening) is set
/// with the intake and taken once, however many takers race for it (the SLA timers of an old
/// and a new leader).
fn announcements_are_set_by_intake_and_taken_once(backend: Backend) {
    use webcare_engine::case::Announce::{self, Arrived, FollowUp, Reopened};
    let f = Fixture::new(backend);
    let t0 = monday();
    let at = |m: i64| t0 + Duration::minutes(m);
    let a = f
        .accept(msg("a1", "c1", "ann", COMPLAINT, t0))
        .escalation
        .unwrap();
    let take_racing = |id: u64| -> Vec<Announce> {
        let barrier = Arc::new(Barrier::new(4));
        let takers: Vec<_> = (0..4)
            .map(|_| {
                let (store, barrier) = (Arc::clone(f.store()), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    store.take_announcements(id).unwrap()
                })
            })
            .collect();
        let taken: Vec<_> = takers
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        assert!(taken.len() <= 1, "taken {} times", taken.len());
        taken
            .into_iter()
            .next()
            .map(|(kinds, esc)| {
                assert_eq!(esc.id, id);
                assert!(esc.case.announce.is_empty(), "cleared in what it returns");
                kinds
            })
            .unwrap_or_default()
    };
    assert_eq!(take_racing(a), [Arrived]);
    assert_eq!(take_racing(a), [], "told once");
    assert!(
        f.store()
            .escalation(a)
            .unwrap()
            .unwrap()
            .case
            .announce
            .is_empty()
    );

    // Before anyone answered, another message is the same wait: nothing new.
    f.accept(msg("a2", "c1", "ann", "Hallo?", at(1)));
    assert_eq!(take_racing(a), []);
    f.store()
        .reply_to_escalation(a, "bob", "We kijken ernaar.", at(2))
        .unwrap();
    f.accept(msg("a3", "c1", "ann", "Nog steeds niet opgehaald.", at(3)));
    f.accept(msg("a4", "c1", "ann", "Hallo??", at(4)));
    assert_eq!(take_racing(a), [FollowUp], "one per follow-up");
    assert_eq!(take_racing(a), []);

    f.store()
        .reply_to_escalation(a, "bob", "Morgen.", at(5))
        .unwrap();
    f.store().resolve_escalation(a, "bob", at(6)).unwrap();
    f.accept(msg("a5", "c1", "ann", COMPLAINT, at(60)));
    assert_eq!(take_racing(a), [Reopened]);
    assert_eq!(take_racing(a), []);
    assert!(f.store().take_announcements(a + 1000).unwrap().is_none());

    // Nobody took them in time (no timer ran): every event waits, in order.
    let b = f
        .accept(msg("b1", "c2", "bea", COMPLAINT, at(70)))
        .escalation
        .unwrap();
    f.store()
        .reply_to_escalation(b, "bob", "We kijken ernaar.", at(71))
        .unwrap();
    f.accept(msg("b2", "c2", "bea", "Nog steeds niet opgehaald.", at(72)));
    assert_eq!(take_racing(b), [Arrived, FollowUp]);
}

fn receipts_keep_the_platforms_reports_beside_a_sent_reply(backend: Backend) {
    use webcare_engine::store::ReceiptEvent;
    let mut f = Fixture::new(backend);
    let t0 = monday();
    let a = f
        .accept(msg("a", "c1", "ann", QUESTION, t0))
        .outbox
        .unwrap();
    let sent_at = t0 + Duration::seconds(1);
    f.store().outbox_sent(a, sent_at).unwrap();
    assert!(
        f.store()
            .outbox_receipts(ChannelKind::Telegram, "c1")
            .unwrap()
            .is_empty()
    );

    // Out of order and twice, as webhooks arrive: the first of each kind is kept.
    let at = |s| t0 + Duration::seconds(s);
    f.store()
        .outbox_receipt(a, ReceiptEvent::Read, at(9))
        .unwrap();
    f.store()
        .outbox_receipt(a, ReceiptEvent::Delivered, at(5))
        .unwrap();
    let again = f
        .store()
        .outbox_receipt(a, ReceiptEvent::Delivered, at(20))
        .unwrap();
    assert_eq!(
        (again.delivered_at, again.read_at),
        (Some(at(5)), Some(at(9)))
    );
    let failed = ReceiptEvent::Failed {
        code: 131026,
        title: "Message undeliverable".into(),
    };
    f.store().outbox_receipt(a, failed, at(30)).unwrap();

    // Durable, and the reply's own state is what it was.
    f.reopen();
    let receipts = f
        .store()
        .outbox_receipts(ChannelKind::Telegram, "c1")
        .unwrap();
    assert_eq!(receipts.len(), 1);
    let (id, receipt) = &receipts[0];
    assert_eq!(*id, a);
    assert_eq!(receipt.delivered_at, Some(at(5)));
    let failure = receipt.failed.as_ref().unwrap();
    assert_eq!(
        (failure.code, failure.title.as_str(), failure.at),
        (131026, "Message undeliverable", at(30))
    );
    let entry = f.store().outbox_entry(a).unwrap().unwrap();
    assert_eq!(entry.status, OutboxStatus::Sent { at: sent_at });
    assert!(matches!(
        f.store()
            .outbox_receipt(a + 1_000_000, ReceiptEvent::Read, t0),
        Err(CaseError::NoSuchOutboxEntry(_))
    ));

    // Forgetting the customer erases the reply and its receipt.
    f.store().forget_author("ann", "test", at(60)).unwrap();
    assert!(
        f.store()
            .outbox_receipts(ChannelKind::Telegram, "c1")
            .unwrap()
            .is_empty()
    );
}

macro_rules! contract_tests {
    ($($case:ident),* $(,)?) => {
        mod redb {
            $( #[test] fn $case() { super::$case(super::Backend::Redb) } )*
        }
        mod sled {
            $( #[test] fn $case() { super::$case(super::Backend::Sled) } )*
        }
        mod postgres {
            $( #[test] fn $case() { super::$case(super::Backend::Postgres) } )*
        }
    };
}

/// The cases about the data directory of an embedded store, which a database server does not
/// have: another backend's files beside it, and a second process opening it.
macro_rules! embedded_tests {
    ($($case:ident),* $(,)?) => {
        mod redb_only {
            $( #[test] fn $case() { super::$case(super::Backend::Redb) } )*
        }
        mod sled_only {
            $( #[test] fn $case() { super::$case(super::Backend::Sled) } )*
        }
    };
}

embedded_tests!(
    another_backends_data_is_not_silently_ignored,
    a_store_in_use_is_refused
);

contract_tests!(
    case_state_is_stored_waiting_linked_satisfaction_and_reopening,
    announcements_are_set_by_intake_and_taken_once,
    intake_stores_message_decision_conversation_and_outbox,
    a_batch_is_taken_in_as_one_message_at_a_time,
    a_batch_decides_each_message_with_the_facts_of_the_ones_before,
    what_is_stored_while_a_batch_is_decided_still_counts,
    duplicate_delivery_returns_the_first_decision,
    concurrent_duplicate_deliveries_are_decided_once,
    concurrent_writers_lose_nothing,
    conversation_facts_follow_the_clock,
    escalations_open_join_claim_and_resolve,
    handing_back_resolves_and_says_so_in_one_go,
    resolving_starts_the_automatic_reply_budget_again,
    repeated_complaints_raise_the_priority,
    outbox_retries_sends_and_gives_up,
    receipts_keep_the_platforms_reports_beside_a_sent_reply,
    a_retried_reply_holds_back_only_its_own_conversation,
    outbox_channels_postponement_dead_letters_and_agent_replies,
    audit_log_appends_and_pages,
    conversation_state_is_set_and_audited,
    history_is_in_time_order_and_pages,
    forget_erases_an_author_and_audits_without_content,
    an_erased_delivery_delivered_again_stays_erased,
    retention_purges_old_data_only,
    reopening_keeps_everything_and_continues_ids,
    a_corrupt_store_is_a_clear_error_and_is_left_alone,
    redaction_keeps_personal_data_out_of_the_log,
    rulebook_versions_are_kept_with_every_activation,
    the_crisis_switch_is_kept_and_audited,
    long_conversations_keep_their_messages_in_order_through_deletes,
    users_and_api_tokens_are_stored_and_audited,
    a_users_language_is_kept_and_removed_with_them,
    inbox_work_notes_replies_reassign_and_breaches,
    modes_choose_the_effects_of_a_decision,
    shadow_decisions_are_stored_beside_the_live_ones_and_erased_with_them,
    report_scan_reads_a_period_in_brief_with_reply_states,
    inbound_messages_and_an_authors_conversations,
);
