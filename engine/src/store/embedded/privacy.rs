//! Erasing in the embedded layout: `forget` (everything of one author) and retention (everything
//! before a date). Deleting a message touches its chunk, dedupe, time and conversation entries,
//! and keeps what a still pending reply needs of it.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::*;
use crate::message::ChannelKind;
use crate::store::codec::{self, ConvRec, MessageRec, OutboxDetail, OutboxRec, Text};
use crate::store::{ForgetReport, PurgeReport, StoreError};

impl Tx<'_> {
    /// Deletes a message with its index entries. Its outbox entry, if any, loses the message
    /// it took its words from: a finished one created before `drop_finished_before` goes, the
    /// others get a copy of what they need (and a place in the conversation's `replies`).
    pub(super) fn delete_message(
        &mut self,
        seq: u64,
        rec: &MessageRec,
        drop_finished_before: i64,
    ) -> Result<bool, StoreError> {
        let channel =
            codec::channel_from(rec.channel).map_err(|e| self.shared.corrupt_seq(seq, e))?;
        let mut conv = self.conv_with_key(channel, &rec.conversation)?;
        let mut outbox_deleted = false;
        if rec.has_reply()
            && let Some((mut out, _)) = self.outbox_rec(seq)?
            && out.detail.is_none()
        {
            if out.status != codec::OUTBOX_PENDING && rec.stored_at() < drop_finished_before {
                self.delete_outbox(seq)?;
                outbox_deleted = true;
            } else {
                out.detail = Some(detail_of(rec));
                self.put_outbox(seq, &out)?;
                if let Some((_, conv)) = &mut conv {
                    conv.replies.push(seq);
                }
            }
        }
        let chunk = self.chunk_mut(codec::chunk_of(seq))?;
        chunk.clear(codec::slot_of(seq));
        if rec.intake().has_shadow {
            self.delete(Space::Records, &key::shadow(seq));
        }
        self.forget_delivery(codec::dedupe_hash(channel, &rec.id), seq)?;
        self.delete(Space::Time, &key::time(rec.received_at, seq));
        if let Some((conv_key, mut conv)) = conv {
            self.unlist(&mut conv, seq)?;
            self.put_rec(&conv_key, &conv)?;
        }
        self.counters.messages = self.counters.messages.saturating_sub(1);
        Ok(outbox_deleted)
    }

    /// Takes message `seq` off its conversation's list: out of the record's newest numbers, or
    /// out of the block that holds it.
    pub(super) fn unlist(&mut self, conv: &mut ConvRec, seq: u64) -> Result<(), StoreError> {
        if let Some(at) = conv.recent.iter().position(|s| *s == seq) {
            conv.recent.remove(at);
            return Ok(());
        }
        for (k, mut seqs) in self.conv_blocks(conv.number)? {
            if let Some(at) = seqs.iter().position(|s| *s == seq) {
                seqs.remove(at);
                if seqs.is_empty() {
                    self.delete(Space::Records, &k);
                } else {
                    self.put(Space::Records, &k, codec::write_deltas(&seqs));
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// Takes delivery `seq` out of the dedupe table: its key is freed, or marked deleted when
    /// the key after it is taken (a collision run must not be cut).
    pub(super) fn forget_delivery(&mut self, hash: [u8; 8], seq: u64) -> Result<(), StoreError> {
        let mut slot = u64::from_be_bytes(hash);
        loop {
            let k = key::id(slot);
            match self.dedupe_at(&k)? {
                None => return Ok(()),
                Some(Some(found)) if found == seq => {
                    let next = key::id(slot.wrapping_add(1));
                    if self.dedupe_at(&next)?.is_some() {
                        self.put(Space::Dedupe, &k, DEDUPE_DELETED.to_be_bytes().to_vec());
                    } else {
                        self.delete(Space::Dedupe, &k);
                    }
                    return Ok(());
                }
                Some(_) => slot = slot.wrapping_add(1),
            }
        }
    }

    /// Deletes a conversation with its messages, its escalations and its outbox entries; pending
    /// replies are kept unless `drop_pending` (they are still owed, but not to somebody who asked
    /// to be forgotten).
    pub(super) fn delete_conversation(
        &mut self,
        channel: ChannelKind,
        conversation: &str,
        drop_pending: bool,
        report: &mut PurgeReport,
    ) -> Result<(), StoreError> {
        let Some((conv_key, conv)) = self.conv_with_key(channel, conversation)? else {
            return Ok(());
        };
        let mut outbox = conv.replies.clone();
        let seqs = self.conv_seqs(&conv)?;
        for (k, _) in self.conv_blocks(conv.number)? {
            self.delete(Space::Records, &k);
        }
        for seq in seqs {
            let Some(rec) = self.message_rec(seq)? else {
                continue;
            };
            if rec.has_reply() {
                outbox.push(seq);
            }
            let chunk = self.chunk_mut(codec::chunk_of(seq))?;
            chunk.clear(codec::slot_of(seq));
            if rec.intake().has_shadow {
                self.delete(Space::Records, &key::shadow(seq));
            }
            self.forget_delivery(codec::dedupe_hash(channel, &rec.id), seq)?;
            self.delete(Space::Time, &key::time(rec.received_at, seq));
            self.counters.messages = self.counters.messages.saturating_sub(1);
            report.messages += 1;
            // A kept pending reply needs its words once the message is gone.
            if !drop_pending
                && rec.has_reply()
                && let Some((mut out, true)) = self.outbox_rec(seq)?
                && out.detail.is_none()
            {
                out.detail = Some(detail_of(&rec));
                self.put_outbox(seq, &out)?;
            }
        }
        for id in outbox {
            match self.outbox_rec(id)? {
                Some((_, true)) if !drop_pending => {}
                Some(_) => {
                    self.delete_outbox(id)?;
                    report.outbox += 1;
                }
                None => {}
            }
        }
        for id in &conv.escalations {
            if self.esc_rec(*id)?.is_some() {
                self.delete(Space::Records, &key::esc(*id));
                self.delete(Space::Records, &key::esc_open(*id));
                self.delete(Space::Records, &inbox::work_key(*id));
                report.escalations += 1;
            }
        }
        for author in &conv.participants {
            self.delete(Space::Records, &key::author(author, channel, conversation));
        }
        self.delete(Space::Records, &conv_key);
        self.delete(Space::Records, &key::conv(channel, conversation));
        report.conversations += 1;
        Ok(())
    }
}

/// What an outbox entry needs of its message once the message is gone.
fn detail_of(rec: &MessageRec) -> OutboxDetail {
    OutboxDetail {
        conversation: rec.conversation.clone(),
        in_reply_to: rec.id.clone(),
        text: rec
            .decision
            .reply
            .clone()
            .unwrap_or(Text::Inline(String::new())),
        created_at: rec.stored_at(),
    }
}

impl Embedded {
    pub(super) fn forget_author(
        &self,
        author: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<ForgetReport, StoreError> {
        let author = author.to_owned();
        let actor = actor.to_owned();
        self.write(move |tx| {
            let mut report = PurgeReport::default();
            // Every delivery erased here leaves a tombstone, so a bridge that delivers it again
            // does not get it stored as new.
            let mut erased: Vec<(ChannelKind, String)> = Vec::new();
            let prefix = key::author_prefix(&author);
            let mut conversations = Vec::new();
            for k in tx.keys_under(&prefix)? {
                let (code, conversation) = key::parse_author(&k, prefix.len())
                    .ok_or_else(|| tx.shared.corrupt(&k, "bad author key"))?;
                let channel = codec::channel_from(code).map_err(|e| tx.shared.corrupt(&k, e))?;
                conversations.push((channel, conversation));
            }
            for (channel, conversation) in conversations {
                let Some((conv_key, conv)) = tx.conv_with_key(channel, &conversation)? else {
                    continue;
                };
                if conv.participants.iter().all(|p| *p == author) {
                    // Theirs alone: nothing in it belongs to anybody else. Pending replies to
                    // them are dropped too: they asked to be forgotten.
                    for seq in tx.conv_seqs(&conv)? {
                        if let Some(rec) = tx.message_rec(seq)? {
                            erased.push((channel, rec.id));
                        }
                    }
                    tx.delete_conversation(channel, &conversation, true, &mut report)?;
                    continue;
                }
                let mut mine = Vec::new();
                for seq in tx.conv_seqs(&conv)? {
                    if let Some(rec) = tx.message_rec(seq)?
                        && rec.author == author
                    {
                        mine.push((seq, rec));
                    }
                }
                for (seq, rec) in &mine {
                    tx.delete_message(*seq, rec, i64::MIN)?;
                    erased.push((channel, rec.id.clone()));
                    report.messages += 1;
                }
                // Read again: deleting the messages rewrote it.
                let mut conv: ConvRec = tx
                    .load(&conv_key)?
                    .ok_or_else(|| tx.shared.corrupt(&conv_key, "conversation vanished"))?;
                conv.participants.retain(|p| *p != author);
                tx.put_rec(&conv_key, &conv)?;
                // The escalations stay for the others in it, but not as theirs: the case
                // state names the customer who opened it.
                for id in &conv.escalations {
                    let Some(mut esc) = tx.esc_rec(*id)? else {
                        continue;
                    };
                    let mut case = tx.case_of(*id, &esc)?;
                    if case.author.as_deref() == Some(author.as_str()) {
                        case.author = None;
                        esc.set_case(&case);
                        tx.put_rec(&key::esc(*id), &esc)?;
                    }
                }
                tx.delete(
                    Space::Records,
                    &key::author(&author, channel, &conversation),
                );
            }
            // When they were last asked for a score names them too.
            tx.delete(Space::Records, &key::surveyed(&author));
            let erased_at = codec::micros(now);
            for (channel, id) in erased {
                tx.put_rec(&key::erased(channel, &id), &erased_at)?;
            }
            let digest = Sha256::digest(author.as_bytes());
            let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            tx.audit(audit(
                &actor,
                "privacy.forget",
                format!("author sha256:{hash}"),
                format!(
                    "erased {} messages, {} conversations, {} escalations, {} outbox entries",
                    report.messages, report.conversations, report.escalations, report.outbox
                ),
                now,
            ))?;
            Ok(ForgetReport {
                messages: report.messages,
                conversations: report.conversations,
                escalations: report.escalations,
                outbox: report.outbox,
            })
        })
    }

    pub(super) fn purge_before(
        &self,
        cutoff: DateTime<Utc>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<PurgeReport, StoreError> {
        // In chunks, each its own transaction, so a large purge never holds up intake for long
        // and never builds one huge commit. A crash halfway leaves the rest for the next run.
        const CHUNK: usize = 1000;
        let cutoff_micros = codec::micros(cutoff);
        let mut total = PurgeReport::default();
        loop {
            let report = self.write(move |tx| {
                let mut report = PurgeReport::default();
                let end = key::time(cutoff_micros, 0);
                let old = tx.range(Space::Time, &[0; 16], Some(&end), CHUNK)?;
                let mut recs = Vec::with_capacity(old.len());
                for (k, _) in &old {
                    let seq = key::tail(k).ok_or_else(|| tx.shared.corrupt(k, "short key"))?;
                    match tx.message_rec(seq)? {
                        Some(rec) => recs.push((seq, rec)),
                        // An index entry without its message: drop it, or it would be met again.
                        None => tx.delete(Space::Time, k),
                    }
                }
                for (seq, rec) in &recs {
                    if tx.delete_message(*seq, rec, cutoff_micros)? {
                        report.outbox += 1;
                    }
                    report.messages += 1;
                }
                Ok((report, old.len()))
            })?;
            total.messages += report.0.messages;
            total.outbox += report.0.outbox;
            if report.1 < CHUNK {
                break;
            }
        }
        // Conversations idle since the cutoff, read page by page from a snapshot and re-checked
        // inside the transaction that deletes them.
        let mut from = vec![key::CONV_REC];
        let end = [key::CONV_REC + 1];
        loop {
            let page = self
                .snapshot()?
                .range(Space::Records, &from, Some(&end), CHUNK)?;
            let mut stale = Vec::new();
            for (k, v) in &page {
                let conv: ConvRec =
                    postcard::from_bytes(v).map_err(|e| self.shared.corrupt(k, e))?;
                if conv.last_activity < cutoff_micros && conv.open_escalation.is_none() {
                    let channel =
                        codec::channel_from(conv.channel).map_err(|e| self.shared.corrupt(k, e))?;
                    stale.push((channel, conv.conversation));
                }
            }
            if !stale.is_empty() {
                let report = self.write(move |tx| {
                    let mut report = PurgeReport::default();
                    let mut targets = Vec::new();
                    for (channel, id) in stale {
                        let conv: Option<ConvRec> = tx.conv(channel, &id)?;
                        if conv.is_some_and(|c| {
                            c.last_activity < cutoff_micros && c.open_escalation.is_none()
                        }) {
                            targets.push((channel, id));
                        }
                    }
                    for (channel, id) in targets {
                        tx.delete_conversation(channel, &id, false, &mut report)?;
                    }
                    Ok(report)
                })?;
                total.conversations += report.conversations;
                total.escalations += report.escalations;
                total.outbox += report.outbox;
                total.messages += report.messages;
            }
            match page.last() {
                Some((k, _)) if page.len() == CHUNK => from = key::after(k),
                _ => break,
            }
        }
        // Finished replies of conversations that are still around. Ids are message numbers, so
        // neighbouring entries read neighbouring chunks.
        let mut start = key::id(0).to_vec();
        loop {
            let mut snap = self.snapshot()?;
            let page = snap.range(Space::Outbox, &start, None, CHUNK)?;
            let mut old = Vec::new();
            for (k, v) in &page {
                let id = key::tail(k).ok_or_else(|| self.shared.corrupt(k, "short key"))?;
                let rec: OutboxRec = postcard::from_bytes(v)
                    .map_err(|e| self.shared.corrupt(format!("outbox {id}").as_bytes(), e))?;
                if rec.status == codec::OUTBOX_PENDING {
                    continue;
                }
                let created_at = match &rec.detail {
                    Some(d) => Some(d.created_at),
                    None => snap.message_rec(id)?.map(|m| m.stored_at()),
                };
                if created_at.is_some_and(|t| t < cutoff_micros) {
                    old.push(id);
                }
            }
            drop(snap);
            if !old.is_empty() {
                total.outbox += self.write(move |tx| {
                    let mut n = 0;
                    for id in old {
                        if let Some((_, false)) = tx.outbox_rec(id)? {
                            tx.delete(Space::Outbox, &key::id(id));
                            tx.delete(Space::Records, &key::receipt(id));
                            n += 1;
                        }
                    }
                    Ok(n)
                })?;
            }
            match page.last().and_then(|(k, _)| key::successor(k)) {
                Some(next) if page.len() == CHUNK => start = next,
                _ => break,
            }
        }
        let details = format!(
            "retention: deleted {} messages, {} conversations, {} escalations, {} outbox entries from before {}",
            total.messages,
            total.conversations,
            total.escalations,
            total.outbox,
            cutoff.to_rfc3339()
        );
        self.append_audit(audit(
            actor,
            "privacy.retention",
            "store".into(),
            details,
            now,
        ))?;
        Ok(total)
    }
}
