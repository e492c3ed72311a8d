//! Intake in the embedded layout: the dedupe lookup, one decided message written in one
//! transaction, and the reads of stored history. It is where the store spends its time, so the
//! caller's thread encodes and hashes and the writer only places bytes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use chrono::{DateTime, NaiveDate, Utc};

use super::look::{Look, has_tombstones, look, lookup};
use super::*;
use crate::case::intake::{self, CaseInput, EscalationEffect, Escalations, KnownEscalation};
use crate::case::outbox::Delivery;
use crate::case::{CaseState, EscalationStatus, escalation};
use crate::case::{ConversationFacts, ConversationState, Tally, history};
use crate::decision::Decision;
use crate::decision::Priority;
use crate::message::{ChannelKind, Inbound};
use crate::mode::Mode;
use crate::store::codec::{self, CaseRec, ConvRec, EscRec, JoinRec, OutboxRec};
use crate::store::{
    HistoryCursor, IntakeLookup, IntakeReceipt, IntakeRecord, StoreError, StoredMessage,
};

impl Embedded {
    pub(super) fn message(
        &self,
        channel: ChannelKind,
        id: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let mut snap = self.snapshot()?;
        match snap
            .find_message(codec::dedupe_hash(channel, id), channel, id)?
            .message
        {
            None => Ok(None),
            Some((seq, rec)) => snap.decode_stored(seq, rec).map(Some),
        }
    }

    pub(super) fn inbound_messages(
        &self,
        keys: &[(ChannelKind, String)],
    ) -> Result<Vec<Inbound>, StoreError> {
        // One snapshot for all: the chunk it caches serves neighbouring messages too.
        let mut snap = self.snapshot()?;
        let mut out = Vec::with_capacity(keys.len());
        for (channel, id) in keys {
            let Some((seq, rec)) = snap
                .find_message(codec::dedupe_hash(*channel, id), *channel, id)?
                .message
            else {
                continue;
            };
            let received_at =
                codec::from_micros(rec.received_at).map_err(|e| self.shared.corrupt_seq(seq, e))?;
            out.push(Inbound {
                id: rec.id,
                channel: *channel,
                conversation: rec.conversation,
                author: rec.author,
                text: rec.text,
                received_at,
                metadata: rec.metadata.into_iter().collect(),
            });
        }
        Ok(out)
    }

    pub(super) fn author_conversations(
        &self,
        author: &str,
    ) -> Result<Vec<(ChannelKind, String)>, StoreError> {
        let mut snap = self.snapshot()?;
        let prefix = key::author_prefix(author);
        let mut out = Vec::new();
        for k in snap.keys_under(&prefix)? {
            let (code, conversation) = key::parse_author(&k, prefix.len())
                .ok_or_else(|| self.shared.corrupt(&k, "bad author key"))?;
            let channel = codec::channel_from(code).map_err(|e| self.shared.corrupt(&k, e))?;
            out.push((channel, conversation));
        }
        Ok(out)
    }

    pub(super) fn conversation_facts(
        &self,
        channel: ChannelKind,
        conversation: &str,
        at: DateTime<Utc>,
        today: chrono::NaiveDate,
    ) -> Result<ConversationFacts, StoreError> {
        Ok(self
            .snapshot()?
            .conv(channel, conversation)?
            .map(|c| c.facts(at, today))
            .unwrap_or_default())
    }

    pub(super) fn intake_lookup(
        &self,
        channel: ChannelKind,
        id: &str,
        conversation: &str,
        at: DateTime<Utc>,
        today: chrono::NaiveDate,
    ) -> Result<IntakeLookup, StoreError> {
        lookup(&mut self.snapshot()?, channel, id, conversation, at, today)
    }

    /// [`Store::decide_and_record_all`], in runs ([`Embedded::decide_run`]): each run's
    /// lookups from one snapshot (opening a read transaction and its tables costs as much as a
    /// lookup), and what they found handed to the writer with each record ([`Seen`]), which
    /// then need not read it again; one commit per run. A conversation's second message in a
    /// run is decided with the facts its first one leaves ([`Run`]), so a batch is mostly one
    /// run.
    pub(super) fn decide_and_record_all(
        &self,
        messages: Vec<(Inbound, NaiveDate)>,
        decide: &mut dyn FnMut(Inbound, ConversationFacts, NaiveDate) -> IntakeRecord,
    ) -> Result<Vec<IntakeReceipt>, StoreError> {
        let mut receipts = Vec::with_capacity(messages.len());
        let mut messages = messages.into_iter().peekable();
        while messages.peek().is_some() {
            self.decide_run(&mut messages, decide, &mut receipts)?;
        }
        Ok(receipts)
    }

    /// Decides and commits the messages of `messages` up to the first the run cannot take,
    /// appending their receipts: a repeat of a delivery it took (the writer must see the first
    /// stored), or the next message of a conversation whose facts it cannot know before its
    /// commit ([`Carried::Unknown`]).
    ///
    /// The facts carried forward are what the writer makes of the conversation as the run
    /// leaves it. They assume that nothing else changes the conversation meanwhile and that
    /// each message of the run is stored: a first delivery of the same message committed
    /// meanwhile under another conversation (the writer then stores it as a duplicate) leaves
    /// its successor decided with one message too many. `webcare ingest`, which holds the store
    /// alone, meets neither, except for a delivery repeated under two conversations.
    fn decide_run(
        &self,
        messages: &mut std::iter::Peekable<std::vec::IntoIter<(Inbound, NaiveDate)>>,
        decide: &mut dyn FnMut(Inbound, ConversationFacts, NaiveDate) -> IntakeRecord,
        receipts: &mut Vec<IntakeReceipt>,
    ) -> Result<(), StoreError> {
        // Taken before the snapshot: a commit that ends in between changes it, so the writer
        // then reads again rather than trust a view that may predate that commit.
        let commits = self.shared.commits.load(Ordering::Acquire);
        let mut snap = self.snapshot()?;
        let tombstones = has_tombstones(&mut snap)?;
        // Sized up front: a `Prepared` is large, and a vector grown by doubling copies every
        // record again and touches fresh memory the kernel has to zero each time.
        let mut prepared = self.spare.prepared.take(messages.len());
        let mut run = Run::default();
        // The receipts of duplicates and erased deliveries, with their place in the run; the
        // rest come from the writer in order.
        let mut early = Vec::new();
        let mut index = 0;
        while let Some((message, _)) = messages.peek() {
            let conversation = (message.channel, message.conversation.clone());
            let carried = match run.conversations.get(&conversation) {
                Some(Carried::Unknown) => break,
                Some(Carried::Known(conv)) => Some(conv.clone()),
                None => None,
            };
            let found = look(
                &mut snap,
                message.channel,
                &message.id,
                &message.conversation,
                tombstones,
                carried.is_none(),
            )?;
            if let Look::New { hash, .. } = &found
                && !run.hashes.insert(*hash)
            {
                // A second delivery of a message this run takes in (or a colliding hash):
                // the writer finds it once the first is committed.
                break;
            }
            let Some((message, today)) = messages.next() else {
                break;
            };
            match found {
                Look::Duplicate(first) => {
                    early.push((index, IntakeReceipt::duplicate_of(*first)));
                }
                Look::Erased => early.push((index, IntakeReceipt::erased(&message.id))),
                Look::New {
                    hash,
                    conv,
                    probed,
                    free,
                } => {
                    let before = carried.as_ref().or(conv.as_ref());
                    let facts = before
                        .map(|c| c.facts(message.received_at, today))
                        .unwrap_or_default();
                    let received = message.received_at;
                    let mut after = match before {
                        Some(c) => c.facts_only(),
                        None => {
                            let mut started = ConvRec::default();
                            started.set_tally(Tally::new(received, today));
                            started
                        }
                    };
                    // A score may answer a satisfaction question: what it does depends on
                    // the conversation's escalations.
                    let awaiting = before.is_some_and(ConvRec::awaiting_score);
                    let record = decide(message, facts, today);
                    run.conversations.insert(
                        conversation,
                        if awaiting {
                            Carried::Unknown
                        } else {
                            after.count(
                                received,
                                today,
                                record.decision.diagnostics.category,
                                intake::queues_reply(record.mode, &record.decision),
                            );
                            Carried::Known(after)
                        },
                    );
                    let mut p = self.prepare(record, Some(hash))?;
                    p.seen = Some(Seen {
                        commits,
                        probed,
                        free,
                        conv,
                        carried: carried.is_some(),
                    });
                    prepared.push(p);
                }
            }
            index += 1;
        }
        drop(snap);
        let placed = if prepared.is_empty() {
            Vec::new()
        } else {
            self.place_all(prepared)?
        };
        let (mut placed, mut early) = (placed.into_iter(), early.into_iter().peekable());
        let start = receipts.len();
        while let Some(receipt) = match early.next_if(|(index, _)| *index == receipts.len() - start)
        {
            Some((_, receipt)) => Some(receipt),
            None => placed.next(),
        } {
            receipts.push(receipt);
        }
        Ok(())
    }

    /// What the caller's thread can do for the writer: redaction, encoding and hashing, so
    /// the writer only places bytes. `hash` is the message's dedupe hash when the caller's
    /// lookup already made it (a SHA-256 each time).
    fn prepare(&self, intake: IntakeRecord, hash: Option<[u8; 8]>) -> Result<Prepared, StoreError> {
        let IntakeRecord {
            mut message,
            decision,
            facts,
            today,
            sla_deadline,
            now,
            mode,
            shadow,
            reply_inline,
            case,
        } = intake;
        // Redaction, encoding and hashing happen here, in the caller's thread, so the writer only
        // places bytes. The record is encoded with the symbols committed so far; only when the
        // decision has a string the table does not know yet does the writer encode it again.
        if let Some(redactor) = &self.redactor {
            message.text = redactor.redact(&message.text).into_owned();
        }
        let mut committed = self.shared.symbols.committed();
        let taken = codec::Intake {
            mode,
            has_shadow: shadow.is_some(),
        };
        let encoded =
            codec::encode_message(&message, &decision, &facts, taken, now, &mut committed)?;
        // The shadow decision is encoded here too, with the same rule: strings holding the
        // customer's words stay inline, so `forget` erases them with the record.
        let shadow_encoded = match &shadow {
            Some(candidate) => Some(encode(&codec::encode_decision(
                candidate,
                [message.text.as_str(), message.id.as_str()],
                &mut committed,
            )?)?),
            None => None,
        };
        let prepared = (!committed.missing).then_some((encoded, shadow_encoded));
        // Ends the symbol table's read lock: the writer takes the write lock to add symbols.
        drop(committed);
        let channel = message.channel;
        let hash = hash.unwrap_or_else(|| codec::dedupe_hash(channel, &message.id));
        Ok(Prepared {
            message,
            decision,
            facts,
            today,
            sla_deadline,
            now,
            mode,
            shadow,
            reply_inline,
            case,
            taken,
            prepared,
            hash,
            seen: None,
        })
    }

    pub(super) fn record_intake(&self, intake: IntakeRecord) -> Result<IntakeReceipt, StoreError> {
        let prepared = self.prepare(intake, None)?;
        // The message and the decision travel back with the answer, so the caller's thread
        // frees what it allocated: a free in another thread's malloc arena takes its lock, and
        // the writer would take it for every string of every decision.
        let (receipt, message, _) = self.write(move |tx| place(tx, prepared))?;
        drop(message);
        Ok(receipt)
    }

    /// Like [`Embedded::record_intake`] for many messages in one transaction: one durable
    /// commit for all, and nothing of them written unless all are.
    pub(super) fn record_intakes(
        &self,
        intakes: Vec<IntakeRecord>,
    ) -> Result<Vec<IntakeReceipt>, StoreError> {
        // Sized up front: a `Prepared` is larger than its record, so collecting would grow the
        // vector by copies, each a fresh block of memory the kernel has to zero.
        let mut prepared = self.spare.prepared.take(intakes.len());
        for intake in intakes {
            prepared.push(self.prepare(intake, None)?);
        }
        self.place_all(prepared)
    }

    /// Places `prepared` in one transaction of the writer and waits until it is durable.
    fn place_all(&self, mut prepared: Vec<Prepared>) -> Result<Vec<IntakeReceipt>, StoreError> {
        let mut placed = self.spare.placed.take(prepared.len());
        let (prepared, mut placed) = self.write(move |tx| {
            for p in prepared.drain(..) {
                placed.push(place(tx, p)?);
            }
            Ok::<_, StoreError>((prepared, placed))
        })?;
        let receipts = placed.drain(..).map(|(receipt, _, _)| receipt).collect();
        self.spare.prepared.give(prepared);
        self.spare.placed.give(placed);
        Ok(receipts)
    }

    pub(super) fn history_page(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let start = match (cursor, since) {
            (Some(c), _) => match key::successor(&key::time(codec::micros(c.received_at), c.seq)) {
                Some(next) => next,
                None => return Ok(Vec::new()),
            },
            (None, Some(since)) => key::time(codec::micros(since), 0).to_vec(),
            (None, None) => vec![0; 16],
        };
        let mut snap = self.snapshot()?;
        let index = snap.range(Space::Time, &start, None, limit)?;
        let mut page = Vec::with_capacity(index.len());
        for (k, _) in index {
            let seq = key::tail(&k).ok_or_else(|| self.shared.corrupt(&k, "short key"))?;
            if let Some(stored) = snap.stored(seq)? {
                page.push(stored);
            }
        }
        Ok(page)
    }

    pub(super) fn conversation_messages(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut snap = self.snapshot()?;
        let Some(conv) = snap.conv(channel, conversation)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for seq in snap.conv_seqs(&conv)? {
            if let Some(stored) = snap.stored(seq)? {
                out.push(stored);
            }
        }
        Ok(out)
    }
}

/// What the writer hands back for each record: the receipt, and the message and shadow
/// decision, to be freed in the caller's thread (see [`Embedded::record_intake`]).
pub(super) type Placed = (IntakeReceipt, Inbound, Option<Decision>);

/// An intake record with the work the caller's thread did for the writer.
pub(super) struct Prepared {
    message: Inbound,
    decision: Decision,
    facts: ConversationFacts,
    today: NaiveDate,
    sla_deadline: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    mode: Mode,
    shadow: Option<Decision>,
    reply_inline: bool,
    case: CaseInput,
    taken: codec::Intake,
    /// The encoded message and shadow decision, unless a string had no symbol yet.
    prepared: Option<(Vec<u8>, Option<Vec<u8>>)>,
    hash: [u8; 8],
    seen: Option<Seen>,
}

/// What a run of [`Embedded::decide_run`] knows before its commit.
#[derive(Default)]
struct Run {
    /// The conversations it took a message of, as that message leaves them.
    conversations: HashMap<(ChannelKind, String), Carried>,
    /// The dedupe hashes of its new messages.
    hashes: HashSet<[u8; 8]>,
}

/// A conversation after a message of the run.
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every one is `Known`; boxing would allocate for each message"
)]
enum Carried {
    /// Its record as the message will leave it, with only what its facts are made of: the
    /// case rules' count of the message and its reply (what `place` writes).
    Known(ConvRec),
    /// Not known before the commit: the run ends before the conversation's next message.
    Unknown,
}

/// What a caller's snapshot found for a new message: that it was not stored yet (the dedupe
/// keys it read, and the free one it goes to) and its conversation's record. The writer uses
/// it instead of reading both again, but only while it still holds ([`Seen::holds`]).
pub(super) struct Seen {
    /// [`Shared::commits`] before the snapshot was taken.
    commits: u64,
    probed: ([u8; 8], [u8; 8]),
    free: [u8; 8],
    conv: Option<ConvRec>,
    /// The run took an earlier message of the conversation: its record is in the writer's
    /// transaction, not in the snapshot, and `conv` is `None`.
    carried: bool,
}

impl Seen {
    /// Whether the snapshot still shows what the writer would read in `tx`: neither the
    /// transactions that ended since it was taken nor `tx` wrote the dedupe key the lookup
    /// read (another delivery of the same message, or one with a colliding hash), the
    /// conversation's index entry (`index_key`) or its record. A lookup that read more than
    /// one dedupe key (a run of collisions, rare) is read again.
    fn holds(&self, tx: &Tx<'_>, index_key: &[u8]) -> bool {
        let (first, last) = self.probed;
        let record = self.conv.as_ref().map(|c| key::conv_rec(c.number));
        let keys = [
            (Space::Dedupe, &first[..]),
            (Space::Records, index_key),
            (Space::Records, record.as_deref().unwrap_or(index_key)),
        ];
        // A carried conversation is read from the transaction: only the dedupe key is seen.
        let keys = if self.carried { &keys[..1] } else { &keys[..] };
        let mut watched = [0u64; 3];
        for ((space, k), hash) in keys.iter().zip(&mut watched) {
            match writer::watched(*space, k) {
                Some(h) => *hash = h,
                None => return false,
            }
        }
        first == last
            && tx
                .recent
                .untouched_since(self.commits, &watched[..keys.len()])
            && keys
                .iter()
                .all(|(space, k)| !tx.overlay.space(*space).contains_key(&overlay::Key::new(k)))
    }
}

/// Writes one prepared message in the writer's transaction: the duplicate check, then the
/// message and what the case rules say it changes. Returns the message and (for a duplicate)
/// the decision, so they are freed in the caller's thread.
#[allow(
    clippy::type_complexity,
    reason = "one private return, named in the doc"
)]
fn place(
    tx: &mut Tx<'_>,
    p: Prepared,
) -> Result<(IntakeReceipt, Inbound, Option<Decision>), StoreError> {
    let Prepared {
        message,
        decision,
        facts,
        today,
        sla_deadline,
        now,
        mode,
        shadow,
        reply_inline,
        case: case_input,
        taken,
        prepared,
        hash,
        seen,
    } = p;
    let channel = message.channel;
    let index_key = key::conv(channel, &message.conversation);
    let (dedupe_key, existing) = match seen.filter(|seen| seen.holds(tx, &index_key)) {
        Some(seen) if seen.carried => (seen.free, tx.conv(channel, &message.conversation)?),
        Some(seen) => (seen.free, seen.conv),
        None => {
            let found = tx.find_message(hash, channel, &message.id)?;
            if let Some((seq, first)) = found.message {
                let receipt = IntakeReceipt::duplicate_of(tx.decode_stored(seq, first)?);
                return Ok((receipt, message, Some(decision)));
            }
            let existing = tx.conv(channel, &message.conversation)?;
            (found.free, existing)
        }
    };
    let state = existing
        .as_ref()
        .map_or(ConversationState::Bot, |c| codec::state_from(c.state));
    let awaiting = existing.as_ref().is_some_and(ConvRec::awaiting_score);
    // The conversation's escalations, when the message may join, reopen or answer one.
    let mut loaded: Vec<Loaded> = Vec::new();
    if let Some(conv) = existing.as_ref()
        && intake::reads_escalations(mode, &decision.action, state, awaiting)
    {
        for &id in &conv.escalations {
            if let Some(esc) = tx.esc_rec(id)? {
                let team = codec::text(&esc.team, &mut Resolver(&mut *tx))?;
                let priority = codec::priority_from(esc.priority)
                    .map_err(|e| tx.shared.corrupt(&key::esc(id), e))?;
                let case = tx.case_of(id, &esc)?;
                loaded.push(Loaded {
                    id,
                    esc,
                    case,
                    team,
                    priority,
                });
            }
        }
    }
    let effects = {
        let escalations = Escalations {
            known: loaded.iter().map(Loaded::known).collect(),
            primary: existing.as_ref().and_then(|c| c.open_escalation),
        };
        intake::effects(
            mode,
            &decision,
            state,
            &escalations,
            message.received_at,
            &case_input,
            awaiting,
        )
    };

    // Reads are done; from here on only writes.
    let received = codec::micros(message.received_at);
    let mut conversation = match existing {
        Some(conv) => conv,
        None => {
            let number = tx.counters.next_conversation;
            tx.counters.next_conversation += 1;
            tx.put(Space::Records, &index_key, number.to_be_bytes().to_vec());
            let mut conv = ConvRec {
                number,
                started_at: received,
                channel: codec::channel_code(channel),
                conversation: message.conversation.clone(),
                ..ConvRec::default()
            };
            conv.set_tally(Tally::new(message.received_at, today));
            conv
        }
    };
    let (bytes, shadow_bytes) = match prepared {
        Some(both) => both,
        None => {
            let private = [message.text.as_str(), message.id.as_str()];
            let shadow_bytes = match &shadow {
                Some(candidate) => Some(encode(&codec::encode_decision(candidate, private, tx)?)?),
                None => None,
            };
            let bytes = codec::encode_message(&message, &decision, &facts, taken, now, tx)?;
            (bytes, shadow_bytes)
        }
    };
    let seq = tx.append_message(&bytes)?;
    if let Some(shadow_bytes) = shadow_bytes {
        tx.put(Space::Records, &key::shadow(seq), shadow_bytes);
    }
    tx.counters.messages += 1;
    tx.put(Space::Dedupe, &dedupe_key, seq.to_be_bytes().to_vec());
    tx.put(Space::Time, &key::time(received, seq), Vec::new());
    conversation.recent.push(seq);
    if conversation.recent.len() >= codec::RECENT {
        let first = conversation.recent[0];
        let block = codec::write_deltas(&conversation.recent);
        tx.put(
            Space::Records,
            &key::conv_block(conversation.number, first),
            block,
        );
        conversation.recent.clear();
    }
    if conversation.join(&message.author) {
        tx.put(
            Space::Records,
            &key::author(&message.author, channel, &message.conversation),
            Vec::new(),
        );
    }
    conversation.count(
        message.received_at,
        today,
        decision.diagnostics.category,
        effects.queue_reply,
    );

    if effects.survey_ends {
        conversation.set_awaiting_score(false);
    }
    let private = [message.text.as_str(), message.id.as_str()];
    let category = decision.diagnostics.category;
    let language = decision.diagnostics.language;
    let received_at = message.received_at;
    let path = tx.shared.path.clone();
    let mut take = |id: u64| -> Result<Loaded, StoreError> {
        match loaded.iter().position(|l| l.id == id) {
            Some(i) => Ok(loaded.swap_remove(i)),
            None => Err(StoreError::Corrupt {
                path: path.clone(),
                reason: format!("escalation {id} changed without being read"),
            }),
        }
    };
    let escalation = match effects.escalation {
        EscalationEffect::None => None,
        EscalationEffect::Open {
            team,
            priority,
            reason,
            linked,
        } => {
            let id = tx.counters.next_escalation;
            tx.counters.next_escalation += 1;
            tx.put(Space::Records, &key::esc_open(id), Vec::new());
            conversation.open_escalation =
                escalation::open_escalation_after(conversation.open_escalation, id);
            conversation.escalations.push(id);
            let mut esc = EscRec {
                channel: codec::channel_code(channel),
                conversation: message.conversation.clone(),
                team: codec::encode_text(team, &private, tx)?,
                priority: codec::priority_code(priority),
                reason: codec::encode_text(&reason, &private, tx)?,
                status: codec::ESC_OPEN,
                by: None,
                created_at: codec::micros(now),
                sla_deadline: sla_deadline.map(codec::micros),
                messages: vec![message.id.clone()],
                joins: Vec::new(),
                events: Vec::new(),
                case: CaseRec::of(&CaseState::opened(
                    now,
                    received_at,
                    sla_deadline,
                    &message.author,
                    category,
                    language,
                )),
            };
            esc.event(
                now,
                history::ENGINE,
                history::opened(team, priority, &message.id),
            );
            tx.put_rec(&key::esc(id), &esc)?;
            // The conversation's other cases say where this message went.
            for other in linked {
                let mut l = take(other)?;
                l.esc.event(now, history::ENGINE, history::linked(id, team));
                tx.put_rec(&key::esc(other), &l.esc)?;
            }
            Some(id)
        }
        EscalationEffect::Join {
            id,
            priority,
            raised,
        } => {
            let Loaded {
                mut esc,
                mut case,
                team,
                ..
            } = take(id)?;
            esc.messages.push(message.id.clone());
            esc.priority = codec::priority_code(priority);
            esc.joins.push(JoinRec {
                after: after(&esc, now),
                raised: raised
                    .map(|(from, to)| (codec::priority_code(from), codec::priority_code(to))),
                team: None,
            });
            let running = deadline_of(tx, id, &esc)?;
            let next = case_input.next_due(&team, priority);
            let running = case.customer_wrote(received_at, category, language, running, next);
            esc.sla_deadline = running.map(codec::micros);
            esc.set_case(&case);
            tx.put_rec(&key::esc(id), &esc)?;
            Some(id)
        }
        EscalationEffect::Reopen {
            id,
            priority,
            raised,
        } => {
            let Loaded {
                mut esc,
                mut case,
                team,
                ..
            } = take(id)?;
            esc.messages.push(message.id.clone());
            esc.priority = codec::priority_code(priority);
            esc.joins.push(JoinRec {
                after: after(&esc, now),
                raised: None,
                team: None,
            });
            esc.set_status(EscalationStatus::Open);
            esc.event(now, history::ENGINE, history::reopened(&message.id, raised));
            let next = case_input.next_due(&team, priority);
            let running = case.reopened_by(received_at, category, language, next);
            esc.sla_deadline = running.map(codec::micros);
            tx.put(Space::Records, &key::esc_open(id), Vec::new());
            esc.set_case(&case);
            tx.put_rec(&key::esc(id), &esc)?;
            conversation.open_escalation =
                escalation::open_escalation_after(conversation.open_escalation, id);
            Some(id)
        }
        EscalationEffect::Follow { id } => {
            let Loaded {
                mut esc,
                mut case,
                team,
                priority,
                ..
            } = take(id)?;
            esc.messages.push(message.id.clone());
            esc.joins.push(JoinRec {
                after: after(&esc, now),
                raised: None,
                team: None,
            });
            let running = deadline_of(tx, id, &esc)?;
            let next = case_input.next_due(&team, priority);
            let running = case.customer_wrote(received_at, category, language, running, next);
            esc.sla_deadline = running.map(codec::micros);
            esc.set_case(&case);
            tx.put_rec(&key::esc(id), &esc)?;
            Some(id)
        }
    };
    if let Some((id, score)) = effects.answer {
        let Loaded {
            mut esc, mut case, ..
        } = take(id)?;
        if let Some(survey) = case.survey.as_mut() {
            survey.score = Some(score);
            survey.answered_at = Some(received_at);
        }
        esc.event(now, history::ENGINE, history::survey_answered(score));
        esc.set_case(&case);
        tx.put_rec(&key::esc(id), &esc)?;
    }

    let mut outbox = None;
    if effects.queue_reply && reply_inline {
        let delivery = Delivery::sent_inline(now);
        let mut rec = OutboxRec {
            channel: codec::channel_code(channel),
            ..OutboxRec::default()
        };
        rec.set_delivery(&delivery);
        tx.put_outbox(seq, &rec)?;
        outbox = Some(seq);
    } else if effects.queue_reply {
        // The reply's words, conversation and time are the message's, and its state is
        // fresh: its place in the chunk's waiting record is the whole entry (see `OutboxRec`).
        tx.set_waiting(seq, Some(codec::channel_code(channel)))?;
        outbox = Some(seq);
    }
    tx.put_rec(&key::conv_rec(conversation.number), &conversation)?;
    let receipt = IntakeReceipt {
        seq,
        decision,
        duplicate: false,
        escalation,
        outbox,
        mode,
    };
    Ok((receipt, message, None))
}

/// One of the conversation's escalations, read for intake.
struct Loaded {
    id: u64,
    esc: EscRec,
    case: CaseState,
    team: String,
    priority: Priority,
}

impl Loaded {
    fn known(&self) -> KnownEscalation<'_> {
        KnownEscalation {
            id: self.id,
            team: &self.team,
            priority: self.priority,
            // One resolved before the case record existed reads as resolved long ago.
            resolved_at: (!self.esc.is_open())
                .then(|| self.case.resolved_at.unwrap_or(DateTime::<Utc>::MIN_UTC)),
            survey_pending: self.case.survey.as_ref().is_some_and(|s| s.score.is_none()),
        }
    }
}

/// Microseconds from the escalation's creation to `now`: a join's time, kept small.
fn after(esc: &EscRec, now: DateTime<Utc>) -> i64 {
    codec::micros(now).saturating_sub(esc.created_at)
}

/// The escalation's running deadline.
fn deadline_of(tx: &Tx<'_>, id: u64, esc: &EscRec) -> Result<Option<DateTime<Utc>>, StoreError> {
    esc.sla_deadline
        .map(codec::from_micros)
        .transpose()
        .map_err(|e| tx.shared.corrupt(&key::esc(id), e))
}
