//! What the PostgreSQL store promises beyond the store contract: several webcare instances on
//! one database (each a store of its own, with its own connection pool, as separate processes
//! would have), a database that goes down and comes back, and the copy of an embedded store.
//! All against a real server this binary starts (`support/postgres.rs`).

// A failed unwrap is a failed test, with its line; that is what these would say anyway.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Barrier, Mutex, OnceLock};

use chrono::{DateTime, Duration, TimeZone, Utc};
use webcare_engine::store::{self, Backend, StoreError, StoreOptions};
use webcare_engine::{CaseError, ChannelKind, Inbound, Intake, Rulebook, Store};

#[path = "support/postgres.rs"]
mod pg;

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

fn options(url: store::postgres::PgUrl) -> StoreOptions {
    StoreOptions {
        backend: Backend::Postgres,
        data_dir: "unused".into(),
        redact: false,
        cache_bytes: None,
        url: Some(url),
    }
}

/// `n` instances on one new database.
fn instances(n: usize) -> Vec<Arc<dyn Store>> {
    let options = options(cluster().new_database());
    (0..n).map(|_| store::open(&options).unwrap()).collect()
}

#[test]
fn a_delivery_that_reaches_every_instance_at_once_is_decided_once() {
    let stores = instances(4);
    let per_instance = 4;
    let barrier = Arc::new(Barrier::new(stores.len() * per_instance));
    let handles: Vec<_> = stores
        .iter()
        .flat_map(|store| (0..per_instance).map(move |i| (Arc::clone(store), i)))
        .map(|(store, i)| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                // Different text per delivery, so a second decision would be visible.
                let text = if i % 2 == 0 { QUESTION } else { FIRE };
                barrier.wait();
                Intake::new(rulebook(), &*store)
                    .accept(msg("dup", "c1", "ann", text, monday()), monday())
                    .unwrap()
            })
        })
        .collect();
    let receipts: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(receipts.iter().filter(|r| !r.duplicate).count(), 1);
    let first = receipts.iter().find(|r| !r.duplicate).unwrap();
    for r in &receipts {
        assert_eq!((r.seq, &r.decision), (first.seq, &first.decision));
    }
    let store = &stores[0];
    assert_eq!(store.stats().unwrap().messages, 1);
    let conv = store
        .conversation(ChannelKind::Telegram, "c1")
        .unwrap()
        .unwrap();
    assert_eq!(conv.messages, 1, "counted once");
    // At most the one reply of the one decision.
    assert!(store.stats().unwrap().pending_outbox <= 1);
}

#[test]
fn one_conversation_is_taken_in_one_message_at_a_time_across_instances() {
    let stores = instances(4);
    let per_instance = 12;
    let barrier = Arc::new(Barrier::new(stores.len()));
    let handles: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(n, store)| {
            let store = Arc::clone(store);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let intake = Intake::new(rulebook(), &*store);
                for i in 0..per_instance {
                    // Every message escalates: each lands in its team's one escalation.
                    let text = if i % 2 == 0 { FIRE } else { COMPLAINT };
                    let at = monday() + Duration::seconds(i as i64);
                    let m = msg(&format!("i{n}-{i}"), "busy", &format!("user-{n}"), text, at);
                    intake.accept(m, at).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = stores.len() * per_instance;
    let store = &stores[0];
    let conv = store
        .conversation(ChannelKind::Telegram, "busy")
        .unwrap()
        .unwrap();
    assert_eq!(conv.messages, total as u64, "no update lost");
    assert_eq!(conv.messages_today, total as i64);
    assert_eq!(conv.participants.len(), stores.len());
    // Fires go to the crisis team, complaints to webcare: one escalation per team.
    let open = store.open_escalations().unwrap();
    assert_eq!(open.len(), 2, "one escalation per team: {open:?}");
    assert_eq!(
        open.iter().map(|e| e.messages.len()).sum::<usize>(),
        total,
        "every message joined its team's"
    );
    assert_eq!(conv.open_escalation, Some(open[0].id));
    // Each one's history lists its messages in the order they were taken in.
    let stored = store
        .conversation_messages(ChannelKind::Telegram, "busy")
        .unwrap();
    let ids: Vec<String> = stored.iter().map(|s| s.message.id.clone()).collect();
    for esc in &open {
        let mine: Vec<String> = ids
            .iter()
            .filter(|id| esc.messages.contains(id))
            .cloned()
            .collect();
        assert_eq!(esc.messages, mine);
    }
    // Each message was decided with every earlier one counted, whichever instance took it in.
    let seen: Vec<i64> = stored.iter().map(|s| s.facts.messages_today).collect();
    assert_eq!(seen, (0..total as i64).collect::<Vec<_>>());
}

#[test]
fn each_reply_is_sent_once_and_in_order_by_workers_on_several_instances() {
    // One worker per instance, as `webcare run` has.
    let stores = instances(4);
    let (conversations, per_conversation) = (6, 5);
    let intake = Intake::new(rulebook(), &*stores[0]);
    for i in 0..per_conversation {
        for c in 0..conversations {
            let at = monday() + Duration::seconds(i as i64);
            let m = msg(&format!("q{c}-{i}"), &format!("c{c}"), "ann", QUESTION, at);
            assert!(intake.accept(m, at).unwrap().outbox.is_some());
        }
    }
    let now = monday() + Duration::hours(1);
    // Every worker records what it sent, per conversation, in the order it sent it.
    let sent: Arc<Mutex<BTreeMap<String, Vec<u64>>>> = Arc::default();
    let barrier = Arc::new(Barrier::new(stores.len()));
    let handles: Vec<_> = stores
        .iter()
        .map(|store| {
            let store = Arc::clone(store);
            let sent = Arc::clone(&sent);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut idle = 0;
                while idle < 20 {
                    let due = store.due_outbox(now, 4).unwrap();
                    if due.is_empty() {
                        idle += 1;
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        continue;
                    }
                    idle = 0;
                    for entry in due {
                        // A reply handed to two workers would be marked twice: the second
                        // one fails, and the count below is off.
                        match store.outbox_sent(entry.id, now) {
                            Ok(_) => sent
                                .lock()
                                .unwrap()
                                .entry(entry.conversation.clone())
                                .or_default()
                                .push(entry.id),
                            Err(CaseError::OutboxFinished(id)) => {
                                panic!("reply {id} was handed to two workers")
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let sent = sent.lock().unwrap();
    let all: Vec<u64> = sent.values().flatten().copied().collect();
    assert_eq!(
        all.len(),
        conversations * per_conversation,
        "every reply sent"
    );
    assert_eq!(
        all.iter().collect::<HashSet<_>>().len(),
        all.len(),
        "once each"
    );
    for (conversation, ids) in sent.iter() {
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, &sorted, "{conversation}: in the order queued");
    }
    assert_eq!(stores[0].stats().unwrap().pending_outbox, 0);
}

#[test]
fn a_reply_one_instance_took_is_not_handed_to_another() {
    let stores = instances(2);
    let (a, b) = (&stores[0], &stores[1]);
    let intake = Intake::new(rulebook(), &**a);
    let first = intake
        .accept(msg("q1", "c1", "ann", QUESTION, monday()), monday())
        .unwrap();
    let at = monday() + Duration::seconds(1);
    let second = intake
        .accept(msg("q2", "c1", "ann", QUESTION, at), at)
        .unwrap();
    let now = monday() + Duration::minutes(1);
    let ids =
        |entries: Vec<store::OutboxEntry>| -> Vec<u64> { entries.iter().map(|e| e.id).collect() };
    assert_eq!(ids(a.due_outbox(now, 10).unwrap()), [first.outbox.unwrap()]);
    // A's worker holds the first reply; B gets neither it nor the one queued after it.
    assert!(b.due_outbox(now, 10).unwrap().is_empty());
    // A asking again (its next round) sees its own claim.
    assert_eq!(ids(a.due_outbox(now, 10).unwrap()), [first.outbox.unwrap()]);
    a.outbox_sent(first.outbox.unwrap(), now).unwrap();
    // Sent: the next one is free for whichever instance asks first.
    assert_eq!(
        ids(b.due_outbox(now, 10).unwrap()),
        [second.outbox.unwrap()]
    );
    assert!(a.due_outbox(now, 10).unwrap().is_empty());
}

/// A reply that waited in A's batch until A's claim ran out, and that B claimed meanwhile, is
/// not sent by A: right before its send A asks to take it and is told no, so the customer gets
/// it once (from B). A reply A still holds, A may send, and its hold outlasts the lease; one A
/// gives back when it stops, B has at once.
#[test]
fn a_reply_another_instance_took_over_is_not_sent_by_the_first() {
    let stores = instances(2);
    let (a, b) = (&stores[0], &stores[1]);
    for s in [a, b] {
        s.cluster()
            .unwrap()
            .set_claim(std::time::Duration::from_secs(1));
    }
    let intake = Intake::new(rulebook(), &**a);
    let first = intake
        .accept(msg("q1", "c1", "ann", QUESTION, monday()), monday())
        .unwrap();
    let second = intake
        .accept(msg("q2", "c2", "bob", QUESTION, monday()), monday())
        .unwrap();
    let (first, second) = (first.outbox.unwrap(), second.outbox.unwrap());
    let now = monday() + Duration::minutes(1);
    assert_eq!(
        a.due_outbox(now, 10).unwrap().len(),
        2,
        "A's batch holds both"
    );
    // A takes the second at once, held for the send (10 s), longer than the 1 s lease.
    let send = std::time::Duration::from_secs(10);
    assert!(a.outbox_take(second, send).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // The first's claim ran out while it waited in A's batch: B takes it over; the second, A
    // still holds.
    let taken: Vec<u64> = b
        .due_outbox(now, 10)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(taken, [first]);
    assert!(!a.outbox_take(first, send).unwrap(), "B has it now");
    assert!(b.outbox_take(first, send).unwrap());
    b.outbox_sent(first, now).unwrap();
    assert!(
        !a.outbox_take(first, send).unwrap(),
        "sent, nothing to take"
    );
    // A stops without sending the second: it gives it back, and B has it at once.
    a.outbox_release(&[second]).unwrap();
    let taken: Vec<u64> = b
        .due_outbox(now, 10)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(taken, [second]);
}

#[test]
fn a_database_that_goes_down_fails_calls_clearly_and_comes_back_without_a_restart() {
    // A cluster of its own: stopping the shared one would fail the other tests.
    let cluster = pg::Cluster::start();
    let options = options(cluster.new_database());
    let store = store::open(&options).unwrap();
    let intake = Intake::new(rulebook(), &*store);
    let before = intake
        .accept(msg("m1", "c1", "ann", QUESTION, monday()), monday())
        .unwrap();

    cluster.stop_server();
    let at = monday() + Duration::minutes(1);
    let error = intake
        .accept(msg("m2", "c1", "ann", FIRE, at), at)
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("cannot be reached"), "{text}");
    assert!(text.contains("nothing was stored"), "{text}");
    assert!(
        !text.contains(options.url.as_ref().unwrap().expose()),
        "no URL in errors"
    );
    assert!(store.open_escalations().is_err(), "reads fail too");

    cluster.start_server();
    // The same store, no restart: the pool reconnects by itself.
    let after = intake.accept(msg("m2", "c1", "ann", FIRE, at), at).unwrap();
    assert!(!after.duplicate, "the failed delivery was not stored");
    assert!(after.escalation.is_some());
    let kept = store.message(ChannelKind::Telegram, "m1").unwrap().unwrap();
    assert_eq!(kept.seq, before.seq, "the acknowledged message survived");
    assert_eq!(store.stats().unwrap().messages, 2);
}

#[test]
fn intake_health_is_failing_while_the_database_is_down_and_recovers_without_a_message() {
    let cluster = pg::Cluster::start();
    let store = store::open(&options(cluster.new_database())).unwrap();
    let runtime = webcare_engine::Runtime::new(Rulebook::embedded().unwrap(), store);
    runtime
        .accept(msg("m1", "c1", "ann", QUESTION, monday()), monday())
        .unwrap();
    assert_eq!(runtime.intake_health(monday()), Ok(()));

    cluster.stop_server();
    let at = monday() + Duration::minutes(1);
    assert!(
        runtime
            .accept(msg("m2", "c1", "ann", FIRE, at), at)
            .is_err()
    );
    let failure = runtime.intake_failure().expect("noted");
    assert_eq!(failure.since, at);
    assert!(failure.reason.contains("cannot be reached"), "{failure:?}");
    // Still down: the probe fails too, and the failure keeps its start.
    let later = at + Duration::minutes(1);
    let still = runtime.intake_health(later).unwrap_err();
    assert_eq!(still.since, at, "{still:?}");

    cluster.start_server();
    // No message arrives (a load balancer sends none to an unhealthy instance): the probe
    // finds the database back, and intake works again.
    let back = later + Duration::minutes(1);
    assert_eq!(runtime.intake_health(back), Ok(()));
    assert_eq!(runtime.intake_failure(), None);
    runtime
        .accept(msg("m2", "c1", "ann", FIRE, back), back)
        .unwrap();
}

#[test]
fn an_embedded_store_is_copied_whole_and_the_counts_checked() {
    let dir = tempfile::tempdir().unwrap();
    let source = store::open(&StoreOptions {
        backend: Backend::Redb,
        data_dir: dir.path().to_owned(),
        redact: false,
        cache_bytes: None,
        url: None,
    })
    .unwrap();
    let t0 = monday();
    let intake = Intake::new(rulebook(), &*source);
    intake
        .accept(msg("q1", "c1", "ann", QUESTION, t0), t0)
        .unwrap();
    let fire = intake.accept(msg("f1", "c2", "bob", FIRE, t0), t0).unwrap();
    intake
        .accept(msg("k1", "c3", "cor", COMPLAINT, t0), t0)
        .unwrap();
    let esc = fire.escalation.unwrap();
    let user = store::User {
        login: "anna".into(),
        name: "Anna".into(),
        role: store::Role::Agent,
        teams: vec!["kcc".into()],
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: t0,
    };
    source.put_user(user, "admin", t0).unwrap();
    source.claim_escalation(esc, "anna", t0).unwrap();
    source
        .add_escalation_note(esc, "anna", "called the fire brigade", t0)
        .unwrap();
    source
        .reply_to_escalation(esc, "anna", "De brandweer is onderweg", t0)
        .unwrap();
    let first_reply = intake
        .accept(msg("q2", "c4", "dan", QUESTION, t0), t0)
        .unwrap()
        .outbox
        .unwrap();
    source
        .outbox_dead_letter(first_reply, "403 blocked", "webcare", None, t0)
        .unwrap();
    let read = intake
        .accept(msg("q3", "c5", "eef", QUESTION, t0), t0)
        .unwrap()
        .outbox
        .unwrap();
    source.outbox_sent(read, t0).unwrap();
    source
        .outbox_receipt(read, store::ReceiptEvent::Read, t0)
        .unwrap();
    store::save_rulebook(&*source, rulebook(), "test", t0).unwrap();
    source.set_crisis_switch(Some(true), "lead", t0).unwrap();
    // An erased author: the tombstone goes along, so a repeat stays erased on the new store.
    intake
        .accept(msg("e1", "c9", "eve", QUESTION, t0), t0)
        .unwrap();
    source.forget_author("eve", "dpo", t0).unwrap();

    let url = cluster().new_database();
    let report = store::postgres::copy::copy(&*source, &url).unwrap();
    assert_eq!(report.messages, 5);
    assert_eq!(report.users, 1);
    let target = store::open(&options(url.clone())).unwrap();
    let tombstones = source.erased_deliveries().unwrap();
    assert_eq!(tombstones.len(), 1);
    assert_eq!(target.erased_deliveries().unwrap(), tombstones);
    let again = Intake::new(rulebook(), &*target)
        .accept(msg("e1", "c9", "eve", QUESTION, t0), t0)
        .unwrap();
    assert!(again.duplicate && again.outbox.is_none(), "{again:?}");
    assert!(
        target
            .message(ChannelKind::Telegram, "e1")
            .unwrap()
            .is_none()
    );

    let all = |s: &dyn Store| -> Vec<_> { store::history(s, None).map(|m| m.unwrap()).collect() };
    assert_eq!(all(&*target), all(&*source), "history, decisions and all");
    for id in source.escalation_ids().unwrap() {
        assert_eq!(
            target.escalation(id).unwrap(),
            source.escalation(id).unwrap()
        );
        assert_eq!(
            target.escalation_work(id).unwrap(),
            source.escalation_work(id).unwrap()
        );
    }
    assert_eq!(
        target.escalation_ids().unwrap(),
        source.escalation_ids().unwrap()
    );
    for id in source.outbox_ids().unwrap() {
        assert_eq!(
            target.outbox_entry(id).unwrap(),
            source.outbox_entry(id).unwrap()
        );
    }
    for (channel, id) in source.conversation_keys().unwrap() {
        assert_eq!(
            target.conversation(channel, &id).unwrap(),
            source.conversation(channel, &id).unwrap()
        );
        assert_eq!(
            target.outbox_receipts(channel, &id).unwrap(),
            source.outbox_receipts(channel, &id).unwrap()
        );
    }
    assert_eq!(
        target
            .outbox_receipts(ChannelKind::Telegram, "c5")
            .unwrap()
            .len(),
        1
    );
    assert_eq!(target.users().unwrap(), source.users().unwrap());
    assert_eq!(
        target.audit_log(None, 1000).unwrap(),
        source.audit_log(None, 1000).unwrap()
    );
    assert_eq!(
        target.rulebook_versions().unwrap(),
        source.rulebook_versions().unwrap()
    );
    assert_eq!(
        target.rulebook_version(&rulebook().version).unwrap(),
        source.rulebook_version(&rulebook().version).unwrap()
    );
    assert_eq!(target.crisis_switch().unwrap(), Some(true));
    let (s, t) = (source.stats().unwrap(), target.stats().unwrap());
    assert_eq!(
        (s.messages, s.open_escalations, s.pending_outbox),
        (t.messages, t.open_escalations, t.pending_outbox)
    );

    // New numbers continue after the copied ones.
    let at = t0 + Duration::minutes(5);
    let next = Intake::new(rulebook(), &*target)
        .accept(msg("n1", "c9", "eve", FIRE, at), at)
        .unwrap();
    let max_seq = all(&*source).iter().map(|m| m.seq).max().unwrap();
    assert!(next.seq > max_seq);
    assert!(
        !source
            .escalation_ids()
            .unwrap()
            .contains(&next.escalation.unwrap())
    );

    // A second copy into the same database is refused: it is not empty any more.
    let again = store::postgres::copy::copy(&*source, &url).unwrap_err();
    assert!(again.to_string().contains("empty database"), "{again}");
}

// --- several instances: signals, leadership, shared sessions and limits (issue 13) ---------

/// Collects what `store`'s listener hears.
fn listen(store: &Arc<dyn Store>) -> std::sync::mpsc::Receiver<webcare_engine::cluster::Received> {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    store
        .cluster()
        .unwrap()
        .subscribe(Box::new(move |received| {
            let _ = tx.lock().unwrap().send(received);
        }));
    rx
}

/// The next signal within `within`, skipping the ones `skip` says to.
fn next_signal(
    rx: &std::sync::mpsc::Receiver<webcare_engine::cluster::Received>,
    within: std::time::Duration,
) -> webcare_engine::cluster::Received {
    rx.recv_timeout(within).expect("a signal in time")
}

#[test]
fn a_change_on_one_instance_is_announced_to_the_others_within_a_second() {
    use webcare_engine::cluster::Signal;
    let stores = instances(2);
    let (a, b) = (&stores[0], &stores[1]);
    let heard = listen(b);
    // The listener connects in the background; give it a moment before the first change.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = std::time::Duration::from_secs(1);

    let started = std::time::Instant::now();
    a.set_crisis_switch(Some(true), "lead", monday()).unwrap();
    let got = next_signal(&heard, second);
    assert_eq!(got.signal, Signal::Crisis);
    assert!(!got.own, "sent by the other instance");
    assert!(started.elapsed() < second);
    let state = b.cluster().unwrap().state().unwrap();
    assert_eq!(state.crisis, Some(true));

    store::save_rulebook(&**a, rulebook(), "lead", monday()).unwrap();
    let got = next_signal(&heard, second);
    assert_eq!(
        got.signal,
        Signal::Rulebook {
            version: rulebook().version.clone()
        }
    );
    assert_eq!(
        b.cluster().unwrap().state().unwrap().rulebook.as_deref(),
        Some(rulebook().version.as_str())
    );

    let anna = store::User {
        login: "anna".into(),
        name: "Anna".into(),
        role: store::Role::Agent,
        teams: vec!["webcare".into()],
        password_hash: "$argon2id$x".into(),
        created_at: monday(),
    };
    a.put_user(anna, "admin", monday()).unwrap();
    assert_eq!(
        next_signal(&heard, second).signal,
        Signal::Access {
            login: "anna".into()
        }
    );
    a.remove_user("anna", "admin", monday()).unwrap();
    assert_eq!(
        next_signal(&heard, second).signal,
        Signal::Access {
            login: "anna".into()
        }
    );

    // What only is news goes out by publish; the sender hears its own as its own.
    let own = listen(a);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let news = Signal::Webchat {
        outbox: 7,
        conversation: "w1".into(),
    };
    a.cluster().unwrap().publish(&news).unwrap();
    assert_eq!(next_signal(&heard, second).signal, news);
    let mine = next_signal(&own, second);
    assert!(mine.own && mine.signal == news);

    // Nothing else was announced.
    assert!(
        heard
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err()
    );
}

#[test]
fn one_instance_leads_and_another_takes_over_when_it_goes() {
    let mut stores = instances(2);
    let b = stores.pop().unwrap();
    let a = stores.pop().unwrap();
    let (tell, changes) = std::sync::mpsc::channel();
    let tell = Mutex::new(tell);
    assert!(
        a.cluster()
            .unwrap()
            .campaign("test", Box::new(|_| {}))
            .unwrap()
    );
    let waits = b
        .cluster()
        .unwrap()
        .campaign(
            "test",
            Box::new(move |leads| {
                let _ = tell.lock().unwrap().send(leads);
            }),
        )
        .unwrap();
    assert!(!waits, "one leader at a time");
    assert!(
        changes
            .recv_timeout(std::time::Duration::from_secs(3))
            .is_err(),
        "B keeps waiting while A leads"
    );
    let gone = std::time::Instant::now();
    drop(a);
    assert_eq!(
        changes.recv_timeout(std::time::Duration::from_secs(15)),
        Ok(true)
    );
    assert!(gone.elapsed() < webcare_engine::cluster::LEADER_RETRY * 2);
}

#[test]
fn inbox_sessions_and_login_limits_hold_on_every_instance() {
    use webcare_engine::cluster::SharedSession;
    let stores = instances(2);
    let (a, b) = (stores[0].cluster().unwrap(), stores[1].cluster().unwrap());
    let digest = [7u8; 32];
    let session = SharedSession {
        login: "anna".into(),
        csrf: "c".into(),
        expires: monday() + Duration::hours(10),
        stamp: [1u8; 32],
    };
    a.session_open(digest, &session).unwrap();
    assert_eq!(b.session(digest, monday()).unwrap(), Some(session.clone()));
    assert_eq!(
        b.session(digest, monday() + Duration::hours(11)).unwrap(),
        None,
        "expired"
    );
    b.session_close(digest).unwrap();
    assert_eq!(
        a.session(digest, monday()).unwrap(),
        None,
        "logged out everywhere"
    );

    let window = Duration::minutes(15);
    let keys = ["login:anna@10.0.0.1", "ip:10.0.0.1"];
    for (i, instance) in [&a, &b, &a].into_iter().enumerate() {
        let at = monday() + Duration::minutes(i as i64);
        assert_eq!(
            instance.limit_attempt(&keys, at, 3, window).unwrap(),
            Ok(())
        );
    }
    let wait = b
        .limit_attempt(&keys, monday() + Duration::minutes(3), 3, window)
        .unwrap();
    assert_eq!(
        wait,
        Err(Duration::minutes(12)),
        "three attempts over two instances"
    );
    // Another login at the same address is refused too (the address has used its tries).
    assert!(
        a.limit_attempt(
            &["login:bob@10.0.0.1", "ip:10.0.0.1"],
            monday() + Duration::minutes(3),
            3,
            window
        )
        .unwrap()
        .is_err()
    );
    // A success gives the address its attempt back and forgets the login's failures.
    a.limit_forget("login:anna@10.0.0.1", true).unwrap();
    a.limit_forget("ip:10.0.0.1", false).unwrap();
    assert_eq!(
        b.limit_attempt(&keys, monday() + Duration::minutes(4), 3, window)
            .unwrap(),
        Ok(())
    );
    // After the window, everything is forgotten.
    assert_eq!(
        b.limit_attempt(&keys, monday() + Duration::minutes(40), 3, window)
            .unwrap(),
        Ok(())
    );
}

/// A report on PostgreSQL lets the database count the previous period (`report_count`) instead
/// of handing its messages over; every figure must be the one the scanning report gives
/// (every message read in full, one outbox read per conversation, `report::build`), with and
/// without the report's filters, on a history of two channels, every kind of reply, resolved
/// and open escalations and the early warning's own alerts.
#[test]
fn a_report_counted_by_the_database_equals_the_scanning_report() {
    use webcare_engine::report::{self, ReportOptions, gather, spike};
    use webcare_engine::store::CountFilter;
    let store = instances(1).remove(0);
    let rulebook = rulebook();
    let intake = Intake::new(rulebook, &*store);
    let texts = [
        QUESTION,
        COMPLAINT,
        FIRE,
        "Bedankt voor de snelle hulp!",
        "Hoe vraag ik een parkeervergunning aan?",
        "De lantaarnpaal in onze straat is kapot en het afval is niet opgehaald",
    ];
    let since = Utc.with_ymd_and_hms(2026, 11, 16, 0, 0, 0).unwrap();
    let until = since + Duration::days(7);
    let start = since - Duration::days(7);
    let mut previous = (0u64, 0u64); // all messages, Telegram's
    for i in 0..460i64 {
        let at = start + Duration::minutes(53 * i);
        let channel = match i % 3 {
            0 => ChannelKind::Webchat,
            _ => ChannelKind::Telegram,
        };
        let mut m = Inbound::from_text(format!("m{i}"), channel, texts[(i % 6) as usize], at);
        m.conversation = format!("c{}", i / 4);
        m.author = match i % 29 {
            0 => spike::ALERT_AUTHOR.to_owned(),
            _ => format!("a{}", i / 4),
        };
        if at < since && i % 29 != 0 {
            previous.0 += 1;
            previous.1 += u64::from(channel == ChannelKind::Telegram);
        }
        let receipt = intake.accept(m, at).unwrap();
        if let Some(id) = receipt.outbox {
            match i % 7 {
                0..=2 => drop(store.outbox_sent(id, at + Duration::seconds(i)).unwrap()),
                3 => drop(store.outbox_failed(id, "gone", None, at).unwrap()),
                _ => {}
            }
        }
        if let Some(esc) = receipt.escalation
            && i % 3 == 0
            && let Ok((_, reply)) = store.reply_to_escalation(
                esc,
                "agent",
                "Ik kijk ernaar.",
                at + Duration::minutes(30),
            )
        {
            store
                .outbox_sent(reply.id, at + Duration::minutes(31))
                .unwrap();
            if i % 2 == 0 {
                let _ = store.resolve_escalation(esc, "agent", at + Duration::hours(2));
            }
        }
    }
    assert!(previous.0 > 100 && previous.1 > 50, "{previous:?}");

    // The database counts what the builder would: the alerts left out, the filters applied.
    let count = |channel| {
        let filter = CountFilter {
            channel,
            team: None,
            except_author: spike::ALERT_AUTHOR,
        };
        let counted = store
            .report_count(start, since, &filter, &mut |_| {})
            .unwrap()
            .expect("PostgreSQL counts");
        counted.messages
    };
    assert_eq!(count(None), previous.0);
    assert_eq!(count(Some(ChannelKind::Telegram)), previous.1);

    let team = store.open_escalations().unwrap()[0].team.clone();
    let now = until + Duration::days(10);
    let base = ReportOptions::new(since, until, now);
    let channel = ReportOptions {
        channel: Some(ChannelKind::Telegram),
        ..base.clone()
    };
    let of_team = ReportOptions {
        team: Some(team),
        ..base.clone()
    };
    let teams = rulebook.teams();
    // Samples feed a histogram; their order follows the read order.
    let normal = |mut r: report::Report| {
        for t in [&mut r.frt_bot, &mut r.frt_human, &mut r.resolution] {
            t.samples.sort_unstable();
        }
        r
    };
    for options in [base, channel, of_team] {
        let counted = gather::report(&*store, &options, teams, &rulebook.default_team).unwrap();
        let g = gather::gather(&*store, &options).unwrap();
        let scanned = report::build(
            &options,
            teams,
            &rulebook.default_team,
            g.messages,
            &g.escalations,
            &g.replies,
        );
        let (counted, scanned) = (normal(counted), normal(scanned));
        assert!(counted.previous_messages > 10, "{counted:?}");
        assert!(
            counted.top_topics.iter().any(|t| t.previous > 0),
            "{counted:?}"
        );
        assert_eq!(counted, scanned, "{:?} {:?}", options.channel, options.team);
    }
}
