//! Reading records, the same code over a snapshot of committed data and inside the writer's
//! transaction (through its overlay), so a job sees its batch's own writes.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::*;
use crate::message::ChannelKind;
use crate::store::codec::{self, Chunk, ConvRec, EscRec, MessageRec, OutboxRec, Resolve};
use crate::store::{Escalation, OutboxEntry, StoreError, StoredMessage};

/// Reading records, from a snapshot of committed data or inside the writer's transaction.
pub(super) trait Reader {
    fn shared(&self) -> &Shared;
    fn read(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    fn range(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<KvPairs, StoreError>;
    /// The encoded record of message `seq`.
    fn message_bytes(&mut self, seq: u64) -> Result<Option<Vec<u8>>, StoreError>;

    fn load<T: DeserializeOwned>(&mut self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.read(Space::Records, key)? {
            None => Ok(None),
            Some(bytes) => postcard::from_bytes(&bytes)
                .map(Some)
                .map_err(|e| self.shared().corrupt(key, e)),
        }
    }

    fn symbol(&mut self, id: u32) -> Result<Arc<str>, StoreError> {
        if let Some(text) = self.shared().symbols.text_of(id) {
            return Ok(text);
        }
        let k = key::sym(id);
        let bytes = self
            .read(Space::Records, &k)?
            .ok_or_else(|| self.shared().corrupt(&k, "missing symbol"))?;
        let text: Arc<str> = String::from_utf8(bytes)
            .map_err(|e| self.shared().corrupt(&k, e))?
            .into();
        Ok(text)
    }

    fn message_rec(&mut self, seq: u64) -> Result<Option<MessageRec>, StoreError> {
        match self.message_bytes(seq)? {
            None => Ok(None),
            Some(bytes) => postcard::from_bytes(&bytes)
                .map(Some)
                .map_err(|e| self.shared().corrupt_seq(seq, e)),
        }
    }

    fn decode_stored(&mut self, seq: u64, rec: MessageRec) -> Result<StoredMessage, StoreError>
    where
        Self: Sized,
    {
        let path = self.shared().path.clone();
        let corrupt = |reason| StoreError::Corrupt {
            path: path.clone(),
            reason: format!("message {seq}: {reason}"),
        };
        let intake = rec.intake();
        let codec::Decoded {
            message,
            decision,
            facts,
            stored_at,
        } = codec::decode_message(rec, &mut Resolver(self), corrupt)?;
        let shadow = match intake.has_shadow {
            false => None,
            true => self
                .load::<codec::DecisionRec>(&key::shadow(seq))?
                .map(|rec| codec::decode_decision(&rec, &message.id, &mut Resolver(self), &corrupt))
                .transpose()?,
        };
        Ok(StoredMessage {
            seq,
            message,
            decision,
            facts,
            stored_at,
            mode: intake.mode,
            shadow,
        })
    }

    fn stored(&mut self, seq: u64) -> Result<Option<StoredMessage>, StoreError>
    where
        Self: Sized,
    {
        match self.message_rec(seq)? {
            None => Ok(None),
            Some(rec) => self.decode_stored(seq, rec).map(Some),
        }
    }

    /// The stored delivery `(channel, id)`, found through its dedupe hash, and the dedupe key
    /// where a new delivery with this hash goes. The dedupe space is a hash table with open
    /// addressing: a delivery sits at its hash or, when that is taken by a colliding one, at
    /// the next free key after it. Keys and values are 8 bytes each, so the B-tree needs no
    /// lengths per entry and an insert in the middle of a leaf only moves bytes.
    fn find_message(
        &mut self,
        hash: [u8; 8],
        channel: ChannelKind,
        id: &str,
    ) -> Result<Found, StoreError> {
        let code = codec::channel_code(channel);
        let mut slot = u64::from_be_bytes(hash);
        let mut free = None;
        loop {
            let k = key::id(slot);
            match self.dedupe_at(&k)? {
                None => {
                    return Ok(Found {
                        message: None,
                        free: free.unwrap_or(k),
                        probed: (hash, k),
                    });
                }
                Some(None) => free = free.or(Some(k)),
                Some(Some(seq)) => {
                    if let Some(rec) = self.message_rec(seq)?
                        && rec.channel == code
                        && rec.id == id
                    {
                        return Ok(Found {
                            message: Some((seq, rec)),
                            free: free.unwrap_or(k),
                            probed: (hash, k),
                        });
                    }
                }
            }
            slot = slot.wrapping_add(1);
        }
    }

    /// A dedupe key: `None` when free, `Some(None)` for the mark a deleted delivery leaves
    /// inside a run of collisions (so the run stays connected), else the sequence number.
    fn dedupe_at(&mut self, k: &[u8]) -> Result<Option<Option<u64>>, StoreError> {
        match self.read(Space::Dedupe, k)? {
            None => Ok(None),
            Some(v) => {
                let seq = u64::from_be_bytes(
                    v.as_slice()
                        .try_into()
                        .map_err(|_| self.shared().corrupt(k, "bad dedupe entry"))?,
                );
                Ok(Some((seq != DEDUPE_DELETED).then_some(seq)))
            }
        }
    }

    /// The key of a conversation's record, through the index from its platform id; `None`
    /// when the conversation is not stored.
    fn conv_key(
        &mut self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let index = key::conv(channel, conversation);
        match self.read(Space::Records, &index)? {
            None => Ok(None),
            Some(bytes) => {
                let number = bytes
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| self.shared().corrupt(&index, "bad conversation number"))?;
                Ok(Some(key::conv_rec(number)))
            }
        }
    }

    fn conv(
        &mut self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Option<ConvRec>, StoreError> {
        match self.conv_key(channel, conversation)? {
            None => Ok(None),
            Some(k) => self.load(&k),
        }
    }

    /// A conversation's record with its key, for a change that writes it back.
    fn conv_with_key(
        &mut self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Option<(Vec<u8>, ConvRec)>, StoreError> {
        let Some(k) = self.conv_key(channel, conversation)? else {
            return Ok(None);
        };
        Ok(self.load(&k)?.map(|conv| (k, conv)))
    }

    /// The blocks of a conversation's older message numbers: key and numbers, oldest first.
    fn conv_blocks(&mut self, number: u64) -> Result<Vec<Block>, StoreError> {
        let prefix = key::conv_blocks(number);
        let end = key::prefix_end(&prefix);
        let mut start = prefix;
        let mut blocks = Vec::new();
        loop {
            let page = self.range(Space::Records, &start, Some(&end), 256)?;
            let full = page.len() == 256;
            for (k, v) in page {
                let seqs = codec::read_deltas(&v).map_err(|e| self.shared().corrupt(&k, e))?;
                start = key::after(&k);
                blocks.push((k, seqs));
            }
            if !full {
                return Ok(blocks);
            }
        }
    }

    /// The sequence numbers of a conversation's messages, oldest first.
    fn conv_seqs(&mut self, conv: &ConvRec) -> Result<Vec<u64>, StoreError> {
        let mut seqs: Vec<u64> = self
            .conv_blocks(conv.number)?
            .into_iter()
            .flat_map(|(_, seqs)| seqs)
            .collect();
        seqs.extend_from_slice(&conv.recent);
        Ok(seqs)
    }

    fn esc_rec(&mut self, id: u64) -> Result<Option<EscRec>, StoreError> {
        self.load(&key::esc(id))
    }

    fn escalation(&mut self, id: u64) -> Result<Option<Escalation>, StoreError>
    where
        Self: Sized,
    {
        let Some(rec) = self.esc_rec(id)? else {
            return Ok(None);
        };
        let k = key::esc(id);
        let path = self.shared().path.clone();
        rec.decode(id, &mut Resolver(self), |reason| StoreError::Corrupt {
            path: path.clone(),
            reason: format!("record `{}`: {reason}", String::from_utf8_lossy(&k)),
        })
        .map(Some)
    }

    /// The case state escalation `id`'s record `esc` carries.
    fn case_of(&self, id: u64, esc: &EscRec) -> Result<crate::case::CaseState, StoreError> {
        esc.case
            .decode()
            .map_err(|e| self.shared().corrupt(&key::esc(id), e))
    }

    /// The platform's receipt of reply `id`, if it reported anything.
    fn receipt(&mut self, id: u64) -> Result<Option<crate::case::outbox::Receipt>, StoreError> {
        let k = key::receipt(id);
        match self.read(Space::Records, &k)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.shared().corrupt(&k, e)),
            None => Ok(None),
        }
    }

    /// When the customer `author` was last asked for a satisfaction score.
    fn surveyed(&mut self, author: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let k = key::surveyed(author);
        match self.load::<i64>(&k)? {
            Some(at) => codec::from_micros(at)
                .map(Some)
                .map_err(|e| self.shared().corrupt(&k, e)),
            None => Ok(None),
        }
    }

    /// The channel code of reply `id` if it waits to be sent ([`waiting`]).
    fn waiting(&mut self, id: u64) -> Result<Option<u8>, StoreError> {
        let record = self.read(Space::Waiting, &key::id(codec::chunk_of(id)))?;
        Ok(record.and_then(|r| waiting::channel_in(&r, waiting::slot(id))))
    }

    /// An outbox record, and whether it is pending: a pending entry is in its chunk's waiting
    /// record, and has a record in `outbox` only once it is no longer fresh (a fresh reply is
    /// all defaults).
    fn outbox_rec(&mut self, id: u64) -> Result<Option<(OutboxRec, bool)>, StoreError> {
        let pending = self.waiting(id)?;
        match self.read(Space::Outbox, &key::id(id))? {
            Some(bytes) => {
                let rec: OutboxRec = postcard::from_bytes(&bytes)
                    .map_err(|e| self.shared().corrupt(format!("outbox {id}").as_bytes(), e))?;
                let pending = rec.status == codec::OUTBOX_PENDING;
                Ok(Some((rec, pending)))
            }
            None => Ok(pending.map(|channel| {
                (
                    OutboxRec {
                        channel,
                        ..OutboxRec::default()
                    },
                    true,
                )
            })),
        }
    }

    fn decode_outbox(&mut self, id: u64, rec: &OutboxRec) -> Result<OutboxEntry, StoreError>
    where
        Self: Sized,
    {
        let message = match rec.detail {
            Some(_) => None,
            None => self.message_rec(id)?,
        };
        let path = self.shared().path.clone();
        rec.decode(id, message.as_ref(), &mut Resolver(self), |reason| {
            StoreError::Corrupt {
                path: path.clone(),
                reason: format!("outbox {id}: {reason}"),
            }
        })
    }

    fn outbox(&mut self, id: u64) -> Result<Option<(OutboxRec, bool, OutboxEntry)>, StoreError>
    where
        Self: Sized,
    {
        let Some((rec, pending)) = self.outbox_rec(id)? else {
            return Ok(None);
        };
        let entry = self.decode_outbox(id, &rec)?;
        Ok(Some((rec, pending, entry)))
    }

    /// Every key under a variable `prefix` of the records, page by page.
    fn keys_under(&mut self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let end = key::prefix_end(prefix);
        let mut start = prefix.to_vec();
        let mut keys = Vec::new();
        loop {
            let page = self.range(Space::Records, &start, Some(&end), 1024)?;
            let full = page.len() == 1024;
            let last = page.last().map(|(k, _)| key::after(k));
            keys.extend(page.into_iter().map(|(k, _)| k));
            match last {
                Some(next) if full => start = next,
                _ => return Ok(keys),
            }
        }
    }

    /// Every id at the end of the keys under `prefix`.
    fn ids_under(&mut self, prefix: &[u8]) -> Result<Vec<u64>, StoreError> {
        self.keys_under(prefix)?
            .iter()
            .map(|k| key::tail(k).ok_or_else(|| self.shared().corrupt(k, "short key")))
            .collect()
    }

    /// The ids in a fixed-width id space (the outbox), page by page.
    fn ids_in(&mut self, space: Space) -> Result<Vec<u64>, StoreError> {
        let mut start = key::id(0).to_vec();
        let mut ids = Vec::new();
        loop {
            let page = self.range(space, &start, None, 4096)?;
            for (k, _) in &page {
                ids.push(key::tail(k).ok_or_else(|| self.shared().corrupt(k, "short key"))?);
            }
            match page.last() {
                Some((k, _)) if page.len() == 4096 => match key::successor(k) {
                    Some(next) => start = next,
                    None => return Ok(ids),
                },
                _ => return Ok(ids),
            }
        }
    }
}

/// The numbers of the messages received from `from` to `until` (microseconds), from the time
/// index.
pub(super) fn numbers_received(
    kv: &mut dyn KvRead,
    shared: &Shared,
    from: i64,
    until: i64,
) -> Result<Vec<u64>, StoreError> {
    let mut seqs = Vec::new();
    if until <= from {
        return Ok(seqs);
    }
    kv.scan_each(
        Space::Time,
        &key::time(from, 0),
        Some(&key::time(until, 0)),
        &mut |k, _| {
            seqs.push(key::tail(k).ok_or_else(|| shared.corrupt(k, "short key"))?);
            Ok(())
        },
    )?;
    Ok(seqs)
}

/// A block of a conversation's message numbers: its key, and the numbers.
pub(super) type Block = (Vec<u8>, Vec<u64>);

/// What [`Reader::find_message`] found: the stored delivery, and where in the dedupe table a
/// new delivery with the same hash goes.
pub(super) struct Found {
    pub(super) message: Option<(u64, MessageRec)>,
    pub(super) free: [u8; 8],
    /// The first and the last dedupe key read.
    pub(super) probed: ([u8; 8], [u8; 8]),
}

pub(super) struct Resolver<'r, R: Reader>(pub(super) &'r mut R);

impl<R: Reader> Resolve for Resolver<'_, R> {
    fn resolve(&mut self, id: u32) -> Result<Arc<str>, StoreError> {
        self.0.symbol(id)
    }
}

/// Reads committed data, all from one consistent view. Remembers the last chunk read, since
/// readers mostly read neighbouring messages.
pub(super) struct Snapshot<'a> {
    pub(super) shared: &'a Shared,
    pub(super) kv: Box<dyn KvRead + 'a>,
    pub(super) chunk: Option<(u64, Option<Vec<u8>>)>,
    /// The dedupe entries not in the dedupe table yet, as of this snapshot or later
    /// ([`super::deferred`]).
    deferred: Arc<Generation>,
}

impl<'a> Snapshot<'a> {
    pub(super) fn new(shared: &'a Shared) -> Result<Self, StoreError> {
        // The generation before the snapshot: a bulk write between the two is then both in
        // the generation and on disk, never in neither.
        let deferred = shared.deferred.current();
        Self::with_generation(shared, deferred)
    }

    pub(super) fn with_generation(
        shared: &'a Shared,
        deferred: Arc<Generation>,
    ) -> Result<Self, StoreError> {
        Ok(Snapshot {
            shared,
            kv: shared.kv.snapshot()?,
            chunk: None,
            deferred,
        })
    }
}

impl Reader for Snapshot<'_> {
    fn shared(&self) -> &Shared {
        self.shared
    }
    fn read(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(entry) = deferred::Entry::of(space, key)
            && let Some(value) = self.deferred.find(&entry)
        {
            return Ok(Some(value));
        }
        self.kv.get(space, key)
    }
    fn range(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<KvPairs, StoreError> {
        let page = self.kv.scan(space, start, end, limit)?;
        if space != Space::Records {
            return Ok(page);
        }
        let waiting = self.deferred.authors_in(start, end, true);
        Ok(deferred::with_authors(page, waiting, limit))
    }
    fn message_bytes(&mut self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let number = codec::chunk_of(seq);
        if self.chunk.as_ref().is_none_or(|(n, _)| *n != number) {
            let bytes = self.kv.get(Space::Messages, &key::id(number))?;
            self.chunk = Some((number, bytes));
        }
        let Some((_, Some(bytes))) = &self.chunk else {
            return Ok(None);
        };
        Chunk::slot_in(bytes, codec::slot_of(seq))
            .map(|slot| slot.map(<[u8]>::to_vec))
            .map_err(|e| self.shared.corrupt_seq(seq, e))
    }
}
