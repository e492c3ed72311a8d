//! The report's one pass over a period: every message in brief, read straight from the
//! chunks without decoding what a report does not use.

use chrono::{DateTime, Utc};

use super::*;
use crate::store::codec::{self, Chunk, OutboxRec};
use crate::store::{OutboxStatus, ReportItem, StoreError};

impl Embedded {
    pub(super) fn report_scan(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        with_replies: bool,
        visit: &mut dyn FnMut(ReportItem<'_>),
    ) -> Result<(), StoreError> {
        const PAGE: usize = 4096;
        let mut snap = self.snapshot()?;
        // The period's message numbers from the time index, then in intake order: neighbours
        // share a chunk, and the outbox is keyed by the same numbers.
        let (from, to) = (codec::micros(since), codec::micros(until));
        let mut seqs = numbers_received(&mut *snap.kv, &self.shared, from, to)?;
        seqs.sort_unstable();
        let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
            return Ok(());
        };

        // Replies that are no longer fresh, from the first message on: those with details of
        // their own go out now (before any message), the others' states are kept for their
        // messages. Ids are message numbers, so both lists come sorted.
        let mut states: Vec<(u64, OutboxRec)> = Vec::new();
        let mut start = key::id(first).to_vec();
        loop {
            let page = snap.range(Space::Outbox, &start, None, PAGE)?;
            for (k, v) in &page {
                let id = key::tail(k).ok_or_else(|| self.shared.corrupt(k, "short key"))?;
                let rec: OutboxRec = postcard::from_bytes(v)
                    .map_err(|e| self.shared.corrupt(format!("outbox {id}").as_bytes(), e))?;
                if rec.detail.is_some() {
                    let entry = snap.decode_outbox(id, &rec)?;
                    visit(ReportItem::Reply(entry));
                }
                if with_replies && id <= last {
                    states.push((id, rec));
                }
            }
            match page.last().and_then(|(k, _)| key::successor(k)) {
                Some(next) if page.len() == PAGE => start = next,
                _ => break,
            }
        }
        // Fresh replies are only their place in a waiting record.
        let mut pending: Vec<u64> = Vec::new();
        let mut from = with_replies.then_some(codec::chunk_of(first));
        while let Some(chunk) = from {
            let (waiting, next) = waiting::page(&mut *snap.kv, &self.shared, chunk)?;
            pending.extend(
                waiting
                    .into_iter()
                    .map(|(id, _)| id)
                    .filter(|id| (first..=last).contains(id)),
            );
            from = next.filter(|n| *n <= codec::chunk_of(last));
        }

        let mut cache = codec::SymbolCache::default();
        let (mut states, mut pending) = (states.iter().peekable(), pending.iter().peekable());
        // The chunks in one range, read in place; symbols the shared table lacks (none, once
        // the store is open) are read on a view of their own, since the range holds this one.
        let mut symbols = self.snapshot()?;
        let shared = &*self.shared;
        let mut wanted = seqs.iter().copied().peekable();
        let mut slots = Vec::new();
        snap.kv.scan_each(
            Space::Messages,
            &key::id(codec::chunk_of(first)),
            Some(&key::id(codec::chunk_of(last) + 1)),
            &mut |k, bytes| {
                let number = key::tail(k).ok_or_else(|| shared.corrupt(k, "short key"))?;
                // Numbers whose chunk is gone (deleted messages) are passed over.
                while wanted
                    .next_if(|seq| codec::chunk_of(*seq) < number)
                    .is_some()
                {}
                if wanted
                    .peek()
                    .is_none_or(|seq| codec::chunk_of(*seq) != number)
                {
                    return Ok(());
                }
                Chunk::slot_ranges(bytes, &mut slots)
                    .map_err(|e| shared.corrupt_seq(number * codec::CHUNK_SLOTS, e))?;
                while let Some(seq) = wanted.next_if(|seq| codec::chunk_of(*seq) == number) {
                    let Some(slot) = slots
                        .get(codec::slot_of(seq))
                        .filter(|r| !r.is_empty())
                        .and_then(|r| bytes.get(r.clone()))
                    else {
                        continue;
                    };
                    let rec: codec::BriefRec<'_> =
                        postcard::from_bytes(slot).map_err(|e| shared.corrupt_seq(seq, e))?;
                    while states.next_if(|(id, _)| *id < seq).is_some() {}
                    while pending.next_if(|id| **id < seq).is_some() {}
                    let state = states.next_if(|(id, _)| *id == seq).map(|(_, r)| r);
                    let fresh = pending.next_if(|id| **id == seq).is_some();
                    let reply = match (with_replies && rec.decision.reply.is_some(), state) {
                        (false, _) => None,
                        // Went out above, with its own details.
                        (true, Some(r)) if r.detail.is_some() => None,
                        (true, Some(r)) => Some(match (r.status, r.sent_at) {
                            (codec::OUTBOX_PENDING, _) => OutboxStatus::Pending,
                            (codec::OUTBOX_SENT, Some(at)) => OutboxStatus::Sent {
                                at: codec::from_micros(at)
                                    .map_err(|e| shared.corrupt_seq(seq, e))?,
                            },
                            (codec::OUTBOX_DEAD, _) => OutboxStatus::Dead,
                            (code, _) => {
                                return Err(
                                    shared.corrupt_seq(seq, format!("bad outbox status {code}"))
                                );
                            }
                        }),
                        (true, None) => fresh.then_some(OutboxStatus::Pending),
                    };
                    rec.load_symbols(&mut cache, &mut Resolver(&mut symbols))?;
                    let brief = rec
                        .brief(seq, &cache, reply)
                        .map_err(|e| shared.corrupt_seq(seq, e))?;
                    visit(ReportItem::Message(brief));
                }
                Ok(())
            },
        )
    }
}
