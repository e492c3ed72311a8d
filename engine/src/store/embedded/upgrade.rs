//! Brings a store written by an older webcare up to [`FORMAT_VERSION`] when it is opened, so
//! installing a new webcare needs no command of its own. A step's last transaction writes its
//! new version number; a step that is interrupted (a crash, a full disk) goes on where its last
//! committed transaction left it at the next start. A store older than the first step here, or
//! newer than this code, is refused with the version it has.
//!
//! Steps:
//!
//! - **2 → 3**: an escalation's case state moves from a JSON record of its own (`x` id) into
//!   the escalation record, as its last field ([`codec::CaseRec`]), so reading an escalation is
//!   one lookup and no JSON (the report reads every open one). A format-2 escalation record is
//!   a format-3 one without that field, so the step appends the encoded case state to the
//!   record's bytes (the default for an escalation opened before the case state existed). It
//!   goes in transactions of `BATCH` escalations in id order, each with its case records and
//!   the id to go on from, so a large store never sits in memory whole.
//! - **3 → 4**: the replies waiting to be sent move from a `pending` key each (id → channel)
//!   into one record a message chunk ([`Space::Waiting`], see `waiting`). It goes in
//!   transactions of the first `BATCH` pending keys left, each merged into its chunk's record
//!   and deleted, so an interrupted step goes on with what is left.
//! - **4 → 5**: a conversation's record moves from its platform id's key (`c` channel id) to
//!   its number's (`C` number), and the `c` key holds the number; the record gains the channel
//!   and id as its last fields, appended to its bytes. It goes in transactions of `BATCH`
//!   conversations with the key to go on from. The last also records from which message
//!   number on a dedupe entry may wait in memory (see `deferred`): a format-4 store has every
//!   entry in the table, so that is the next message number.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::case::CaseState;
use crate::store::codec::{CaseRec, ConvRec, EscRec};

/// Escalations upgraded per transaction; one in tests, so two escalations cross a boundary.
const BATCH: usize = if cfg!(test) { 1 } else { 10_000 };

/// Upgrades the store in `shared` from format `found`, step by step.
pub(super) fn upgrade(shared: &Shared, found: u32) -> Result<(), StoreError> {
    let refuse = || StoreError::Version {
        path: shared.path.clone(),
        found,
        supported: FORMAT_VERSION,
    };
    if found > FORMAT_VERSION {
        return Err(refuse());
    }
    for from in found..FORMAT_VERSION {
        // Each step goes a batch a transaction and says when it was the last.
        let step: fn(&Shared, &mut dyn KvTxn) -> Result<bool, StoreError> = match from {
            2 => case_into_escalation,
            3 => pending_into_waiting,
            4 => conversations_by_number,
            _ => return Err(refuse()),
        };
        let mut done = false;
        while !done {
            shared.kv.transact(&mut |txn| {
                done = step(shared, txn)?;
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// Format 2 → 3 (see the module docs), the next `BATCH` escalations; true when that was the
/// last of them and the store is now format 3.
fn case_into_escalation(shared: &Shared, txn: &mut dyn KvTxn) -> Result<bool, StoreError> {
    let progress = key::meta("upgrade3");
    let from = match txn.get(Space::Records, &progress)? {
        Some(bytes) => u64::from_be_bytes(
            bytes
                .try_into()
                .map_err(|_| shared.corrupt(&progress, "bad upgrade progress"))?,
        ),
        None => 0,
    };
    // Reads first (a transaction's writes come after its reads), then writes in key order:
    // escalations (`e`), case records (`x`), the progress (`zupgrade3`) or the version
    // (`zversion`).
    let escalations = txn.scan(
        Space::Records,
        &key::esc(from),
        Some(&key::prefix_end(&[key::ESC])),
        BATCH,
    )?;
    let last = escalations.len() < BATCH;
    let next = match escalations.last() {
        Some((k, _)) if !last => {
            Some(key::tail(k).ok_or_else(|| shared.corrupt(k, "short key"))? + 1)
        }
        _ => None,
    };
    // This batch's case records; the last batch takes any left without an escalation too.
    let case_end = match next {
        Some(next) => key::case(next),
        None => key::prefix_end(&[key::CASE]),
    };
    let mut cases: HashMap<u64, CaseState> = HashMap::new();
    let mut case_keys = Vec::new();
    txn.scan_each(
        Space::Records,
        &key::case(from),
        Some(&case_end),
        &mut |k, v| {
            let id = key::tail(k).ok_or_else(|| shared.corrupt(k, "short key"))?;
            let case = serde_json::from_slice(v).map_err(|e| shared.corrupt(k, e))?;
            cases.insert(id, case);
            case_keys.push(k.to_vec());
            Ok(())
        },
    )?;
    for (k, mut bytes) in escalations {
        let id = key::tail(&k).ok_or_else(|| shared.corrupt(&k, "short key"))?;
        let case = cases.remove(&id).unwrap_or_default();
        bytes.extend_from_slice(&encode(&CaseRec::of(&case))?);
        // Whatever was not a format-2 escalation record does not read as a format-3 one.
        postcard::from_bytes::<EscRec>(&bytes)
            .map_err(|e| shared.corrupt(&k, format!("not a format-2 escalation record ({e})")))?;
        txn.put(Space::Records, &k, &bytes)?;
    }
    for k in &case_keys {
        txn.delete(Space::Records, k)?;
    }
    match next {
        Some(next) => txn.put(Space::Records, &progress, &next.to_be_bytes())?,
        None => {
            txn.delete(Space::Records, &progress)?;
            txn.put(Space::Records, &key::meta("version"), &3u32.to_be_bytes())?;
        }
    }
    Ok(last)
}

/// Format 4 → 5 (see the module docs), the next `BATCH` conversations; true when those were
/// the last and the store is now format 5.
fn conversations_by_number(shared: &Shared, txn: &mut dyn KvTxn) -> Result<bool, StoreError> {
    let progress = key::meta("upgrade5");
    let from = txn
        .get(Space::Records, &progress)?
        .unwrap_or_else(|| vec![key::CONV]);
    let page = txn.scan(
        Space::Records,
        &from,
        Some(&key::prefix_end(&[key::CONV])),
        BATCH,
    )?;
    let last = page.len() < BATCH;
    let counters_key = key::meta("counters");
    let counters: Counters = match txn.get(Space::Records, &counters_key)? {
        Some(bytes) => {
            postcard::from_bytes(&bytes).map_err(|e| shared.corrupt(&counters_key, e))?
        }
        None => Counters::default(),
    };
    let mut records = Vec::with_capacity(page.len());
    for (k, bytes) in &page {
        let (code, id) = key::parse_conv(k).ok_or_else(|| shared.corrupt(k, "bad key"))?;
        let mut bytes = bytes.clone();
        bytes.extend_from_slice(&encode(&(code, id.as_str()))?);
        let conv: ConvRec = postcard::from_bytes(&bytes)
            .map_err(|e| shared.corrupt(k, format!("not a format-4 conversation record ({e})")))?;
        records.push((key::conv_rec(conv.number), bytes, k, conv.number));
    }
    // Writes in key order: records (`C`), the index (`c`), then the meta records (`z`).
    records.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (record_key, bytes, _, _) in &records {
        txn.put(Space::Records, record_key, bytes)?;
    }
    records.sort_unstable_by(|a, b| a.2.cmp(b.2));
    for (_, _, index_key, number) in &records {
        txn.put(Space::Records, index_key, &number.to_be_bytes())?;
    }
    match page.last() {
        Some((k, _)) if !last => txn.put(Space::Records, &progress, &key::after(k))?,
        _ => {
            deferred::put_marks(txn, &counters)?;
            txn.delete(Space::Records, &progress)?;
            txn.put(Space::Records, &key::meta("version"), &5u32.to_be_bytes())?;
        }
    }
    Ok(last)
}

/// Format 3 → 4 (see the module docs), the first `BATCH` pending keys left; true when those
/// were the last and the store is now format 4.
fn pending_into_waiting(shared: &Shared, txn: &mut dyn KvTxn) -> Result<bool, StoreError> {
    let pending = txn.scan(Space::Pending, &key::id(0), None, BATCH)?;
    let last = pending.len() < BATCH;
    // Reads first: the chunks' records as they are (a chunk can span two transactions).
    let mut records: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for (k, v) in &pending {
        let id = key::tail(k).ok_or_else(|| shared.corrupt(k, "short key"))?;
        let &[channel] = v.as_slice() else {
            return Err(shared.corrupt(format!("pending {id}").as_bytes(), "bad channel code"));
        };
        let number = codec::chunk_of(id);
        let record = match records.entry(number) {
            Entry::Occupied(record) => record.into_mut(),
            Entry::Vacant(record) => record.insert(
                txn.get(Space::Waiting, &key::id(number))?
                    .unwrap_or_default(),
            ),
        };
        waiting::set(record, waiting::slot(id), Some(channel));
    }
    // Then writes in space and key order: the version (records), the pending keys, the
    // waiting records.
    if last {
        txn.put(Space::Records, &key::meta("version"), &4u32.to_be_bytes())?;
    }
    for (k, _) in &pending {
        txn.delete(Space::Pending, k)?;
    }
    for (number, record) in records {
        txn.put(Space::Waiting, &key::id(number), &record)?;
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde::Serialize;

    use super::*;
    use crate::case::{Announce, EscalationStatus, Survey};
    use crate::decision::{Language, Priority};
    use crate::store::codec::{EventRec, JoinRec, Text};

    /// The escalation record exactly as format 2 wrote it: [`EscRec`] without its case state.
    #[derive(Serialize)]
    struct EscRecV2 {
        channel: u8,
        conversation: String,
        team: Text,
        priority: u8,
        reason: Text,
        status: u8,
        by: Option<String>,
        created_at: i64,
        sla_deadline: Option<i64>,
        messages: Vec<String>,
        joins: Vec<JoinRec>,
        events: Vec<EventRec>,
    }

    /// The key-value store of `backend` at `path`, as `store::open` would make it.
    fn open_kv(backend: Backend, path: &std::path::Path) -> Arc<dyn Kv> {
        match backend {
            Backend::Redb => Arc::new(crate::store::redb::RedbKv::open(path, None).unwrap()),
            _ => Arc::new(crate::store::sled::SledKv::open(path, None).unwrap()),
        }
    }

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000 + h * 3600, 0).unwrap()
    }

    /// A case state with every field set.
    fn full_case() -> CaseState {
        CaseState {
            opened_at: Some(t(0)),
            first_response_due: Some(t(4)),
            first_response_at: Some(t(1)),
            first_response_by: Some("ann".into()),
            waiting_since: Some(t(5)),
            resolved_at: Some(t(3)),
            first_resolved_at: Some(t(2)),
            reopened: 2,
            critical: true,
            author: Some("citizen".into()),
            language: Some(Language::En),
            survey: Some(Survey {
                asked_at: t(3),
                agent: "ann".into(),
                outbox: 77,
                score: Some(4),
                answered_at: Some(t(4)),
            }),
            announce: vec![Announce::FollowUp, Announce::Reopened],
        }
    }

    fn esc_v2(conversation: &str) -> EscRecV2 {
        EscRecV2 {
            channel: codec::channel_code(ChannelKind::Telegram),
            conversation: conversation.into(),
            team: Text::Inline("legal".into()),
            priority: codec::priority_code(Priority::High),
            reason: Text::Inline("a complaint".into()),
            status: codec::ESC_CLAIMED,
            by: Some("ann".into()),
            created_at: codec::micros(t(0)),
            sla_deadline: Some(codec::micros(t(4))),
            messages: vec!["m1".into(), "m2".into()],
            joins: vec![JoinRec {
                after: 60_000_000,
                raised: Some((1, 2)),
                team: None,
            }],
            events: vec![EventRec {
                joins_before: 0,
                at: codec::micros(t(0)),
                actor: "engine".into(),
                change: "opened".into(),
            }],
        }
    }

    /// Writes what the code before format 3 wrote: escalations 1 and 2, open; a case record
    /// (JSON) for 1 only, since 2 is from before the case state; and one for 9, whose
    /// escalation is gone.
    fn write_format_2(kv: &Arc<dyn Kv>) {
        kv.transact(&mut |txn| {
            for id in [1u64, 2] {
                let bytes = postcard::to_stdvec(&esc_v2(&format!("c{id}"))).unwrap();
                txn.put(Space::Records, &key::esc(id), &bytes)?;
            }
            txn.put(Space::Records, &key::esc_open(1), &[])?;
            txn.put(Space::Records, &key::esc_open(2), &[])?;
            let json = serde_json::to_vec(&full_case()).unwrap();
            txn.put(Space::Records, &key::case(1), &json)?;
            txn.put(Space::Records, &key::case(9), &json)?;
            txn.put(Space::Records, &key::meta("version"), &2u32.to_be_bytes())
        })
        .unwrap();
    }

    /// The escalations read back whole, 1 with every field of its case state, 2 with the
    /// default; no case record is left and the store says format 3.
    fn assert_upgraded(store: &Embedded) {
        let one = Store::escalation(store, 1).unwrap().unwrap();
        assert_eq!(one.case, full_case());
        assert_eq!(one.status, EscalationStatus::Claimed { by: "ann".into() });
        assert_eq!((one.team.as_str(), one.priority), ("legal", Priority::High));
        assert_eq!(one.messages, ["m1", "m2"]);
        assert_eq!(one.history.len(), 2, "the opening and the join");
        assert_eq!(one.sla_deadline, Some(t(4)));
        let open = store.open_escalations().unwrap();
        assert_eq!(open.len(), 2);
        assert_eq!(open[1].case, CaseState::default());
        let mut snap = store.snapshot().unwrap();
        assert!(snap.keys_under(&[key::CASE]).unwrap().is_empty());
        assert_eq!(
            snap.read(Space::Records, &key::meta("upgrade3")).unwrap(),
            None
        );
        assert_eq!(
            snap.read(Space::Records, &key::meta("version")).unwrap(),
            Some(FORMAT_VERSION.to_be_bytes().to_vec())
        );
    }

    /// A store written by the code before format 3, opened by this code.
    #[test]
    fn a_format_2_store_is_upgraded_with_every_case_field_intact() {
        for backend in [Backend::Redb, Backend::Sled] {
            let dir = tempfile::tempdir().unwrap();
            let path = backend.path_in(dir.path());
            // One handle for the old code's writes and both opens: sled lets go of its file
            // lock only a moment after the last handle is dropped.
            let kv = open_kv(backend, &path);
            write_format_2(&kv);
            let store = Embedded::new(Arc::clone(&kv), backend, path.clone(), None).unwrap();
            assert_upgraded(&store);
            drop(store);
            // Opened again: nothing more to upgrade, and the same state.
            let store = Embedded::new(kv, backend, path, None).unwrap();
            assert_upgraded(&store);
        }
    }

    /// An upgrade stopped after its first transaction (a crash) goes on from there at the next
    /// open, and neither upgrades an escalation twice nor loses a case record.
    #[test]
    fn an_interrupted_upgrade_goes_on_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webcare.redb");
        let kv: Arc<dyn Kv> = Arc::new(crate::store::redb::RedbKv::open(&path, None).unwrap());
        write_format_2(&kv);
        let shared = Shared {
            kv: Arc::clone(&kv),
            chunk_bytes: kv.chunk_bytes(),
            symbols: Symbols::default(),
            path: path.clone(),
            backend: Backend::Redb,
            commits: Default::default(),
            deferred: Default::default(),
        };
        kv.transact(&mut |txn| {
            assert!(
                !case_into_escalation(&shared, txn)?,
                "one escalation a batch"
            );
            Ok(())
        })
        .unwrap();
        let mut snap = kv.snapshot().unwrap();
        assert_eq!(
            snap.get(Space::Records, &key::meta("version")).unwrap(),
            Some(2u32.to_be_bytes().to_vec()),
            "still format 2 halfway"
        );
        assert_eq!(snap.get(Space::Records, &key::case(1)).unwrap(), None);
        drop(snap);
        let store = Embedded::new(kv, Backend::Redb, path, None).unwrap();
        assert_upgraded(&store);
    }

    #[test]
    fn a_store_of_an_unknown_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webcare.redb");
        let kv: Arc<dyn Kv> = Arc::new(crate::store::redb::RedbKv::open(&path, None).unwrap());
        for found in [1u32, FORMAT_VERSION + 1] {
            kv.transact(&mut |txn| {
                txn.put(Space::Records, &key::meta("version"), &found.to_be_bytes())
            })
            .unwrap();
            match Embedded::new(Arc::clone(&kv), Backend::Redb, path.clone(), None) {
                Err(StoreError::Version {
                    found: f,
                    supported,
                    ..
                }) => assert_eq!((f, supported), (found, FORMAT_VERSION)),
                Err(e) => panic!("format {found}: {e}"),
                Ok(_) => panic!("format {found} was opened"),
            }
        }
    }

    /// Turns this code's waiting records into what format 3 wrote: a `pending` key a waiting
    /// reply (id → channel code), and the version 3.
    fn back_to_format_3(kv: &Arc<dyn Kv>, shared: &Shared) {
        kv.transact(&mut |txn| {
            // Conversation records under their platform ids, without the two fields format 5
            // appended.
            let conversations = txn.scan(
                Space::Records,
                &[key::CONV_REC],
                Some(&[key::CONV_REC + 1]),
                usize::MAX,
            )?;
            for (k, bytes) in &conversations {
                let conv: ConvRec = postcard::from_bytes(bytes).unwrap();
                let appended = encode(&(conv.channel, conv.conversation.as_str()))?;
                let channel = codec::channel_from(conv.channel).unwrap();
                txn.put(
                    Space::Records,
                    &key::conv(channel, &conv.conversation),
                    &bytes[..bytes.len() - appended.len()],
                )?;
                txn.delete(Space::Records, k)?;
            }
            let records = txn.scan(Space::Waiting, &key::id(0), None, usize::MAX)?;
            txn.put(Space::Records, &key::meta("version"), &3u32.to_be_bytes())?;
            for (k, v) in &records {
                let number = key::tail(k).unwrap();
                for (id, channel) in waiting::entries(shared, number, v)? {
                    txn.put(Space::Pending, &key::id(id), &[channel])?;
                }
            }
            for (k, _) in &records {
                txn.delete(Space::Waiting, k)?;
            }
            Ok(())
        })
        .unwrap();
    }

    /// A store written by format 3, opened by this code: its history reads as it did, its
    /// waiting replies (a `pending` key each in format 3) are still due in their order and
    /// counted, and `forget` erases a customer's together with their messages.
    #[test]
    fn a_format_3_stores_waiting_replies_are_still_sent_and_erased() {
        const QUESTION: &str = "Wat zijn de openingstijden van het stadskantoor?";
        for backend in [Backend::Redb, Backend::Sled] {
            let dir = tempfile::tempdir().unwrap();
            let path = backend.path_in(dir.path());
            let kv = open_kv(backend, &path);
            let store = Embedded::new(Arc::clone(&kv), backend, path.clone(), None).unwrap();
            let rulebook = crate::Rulebook::embedded().unwrap();
            // Received out of intake order, so history's order is the time index's.
            let sent = [
                ("q1", "ann", 3),
                ("q2", "bob", 1),
                ("q3", "ann", 2),
                ("q4", "bob", 4),
            ];
            for (id, author, h) in sent {
                let mut m = crate::Inbound::from_text(id, ChannelKind::Telegram, QUESTION, t(h));
                m.author = author.into();
                m.conversation = author.into();
                let receipt = crate::Intake::new(&rulebook, &store)
                    .accept(m, t(h))
                    .unwrap();
                assert!(receipt.outbox.is_some(), "{id} is answered");
            }
            let history = |store: &Embedded| -> Vec<String> {
                crate::store::history(store, None)
                    .map(|m| m.unwrap().message.id)
                    .collect()
            };
            let due = |store: &Embedded| -> Vec<String> {
                let due = Store::due_outbox(store, t(9), 100).unwrap();
                due.into_iter().map(|e| e.in_reply_to).collect()
            };
            assert_eq!(history(&store), ["q2", "q3", "q1", "q4"]);
            // One reply a conversation at a time, in the order they were queued.
            assert_eq!(due(&store), ["q1", "q2"]);
            assert_eq!(Store::stats(&store).unwrap().pending_outbox, 4);
            let shared = Shared {
                kv: Arc::clone(&kv),
                chunk_bytes: kv.chunk_bytes(),
                symbols: Symbols::default(),
                path: path.clone(),
                backend,
                commits: Default::default(),
                deferred: Default::default(),
            };
            drop(store);
            back_to_format_3(&kv, &shared);
            assert_eq!(
                kv.snapshot()
                    .unwrap()
                    .scan(Space::Pending, &[], None, 9)
                    .unwrap()
                    .len(),
                4
            );

            let store = Embedded::new(Arc::clone(&kv), backend, path.clone(), None).unwrap();
            assert_eq!(history(&store), ["q2", "q3", "q1", "q4"]);
            assert_eq!(due(&store), ["q1", "q2"]);
            assert_eq!(Store::stats(&store).unwrap().pending_outbox, 4);
            let mut snap = kv.snapshot().unwrap();
            assert!(snap.scan(Space::Pending, &[], None, 1).unwrap().is_empty());
            assert_eq!(
                snap.get(Space::Records, &key::meta("version")).unwrap(),
                Some(FORMAT_VERSION.to_be_bytes().to_vec())
            );
            drop(snap);

            // A sent reply is no longer due; a forgotten customer's are gone with their words.
            let q2 = Store::message(&store, ChannelKind::Telegram, "q2")
                .unwrap()
                .unwrap();
            store.outbox_sent(q2.seq, t(9)).unwrap();
            assert_eq!(due(&store), ["q1", "q4"]);
            let report = Store::forget_author(&store, "ann", "dpo", t(9)).unwrap();
            assert_eq!((report.messages, report.outbox), (2, 2));
            assert_eq!(history(&store), ["q2", "q4"]);
            assert_eq!(due(&store), ["q4"]);
            assert_eq!(Store::stats(&store).unwrap().pending_outbox, 1);
            let mut snap = kv.snapshot().unwrap();
            let waiting = waiting::all_ids(&mut *snap, &shared).unwrap();
            let q4 = Store::message(&store, ChannelKind::Telegram, "q4")
                .unwrap()
                .unwrap();
            assert_eq!(waiting, [q4.seq], "nothing of ann's left waiting");
        }
    }
}
