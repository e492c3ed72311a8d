//! Packing message records into chunks of one B-tree page, the delta-encoded lists of a
//! conversation's message numbers, and the dedupe hash.

use sha2::{Digest, Sha256};

use super::*;
use crate::message::ChannelKind;

// --- message chunks --------------------------------------------------------------------------

/// Slots per chunk: a message's sequence number is `chunk << 8 | slot`, so the chunk holding
/// a message is found without an index, and sequence numbers still grow in intake order.
pub const CHUNK_SLOTS: u64 = 256;

/// The largest encoded chunk that still fits one 4 KiB redb leaf page with its 8-byte key:
/// page header 4, value length 4, key 8. One byte more and redb would allocate 8 KiB for it.
pub const CHUNK_BYTES: usize = 4096 - 4 - 4 - 8;

pub fn chunk_of(seq: u64) -> u64 {
    seq / CHUNK_SLOTS
}

pub fn slot_of(seq: u64) -> usize {
    (seq % CHUNK_SLOTS) as usize
}

/// Consecutive message records, encoded as a slot count, each slot's length, then the slots'
/// bytes. An empty slot is a deleted message, or a number taken by an agent reply. In memory
/// the slots share one buffer, so loading the last chunk for every commit costs two
/// allocations, not one per message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunk {
    /// Where each slot ends in `body`.
    ends: Vec<usize>,
    body: Vec<u8>,
}

impl Chunk {
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut at = 0;
        let count = read_varint(bytes, &mut at)?;
        if count > CHUNK_SLOTS {
            return Err(CodecError::malformed(format!("chunk with {count} slots")));
        }
        let mut ends = Vec::with_capacity(count as usize + 1);
        let mut end = 0usize;
        for _ in 0..count {
            end = end
                .checked_add(read_varint(bytes, &mut at)? as usize)
                .ok_or(CodecError::malformed("chunk offset overflow"))?;
            ends.push(end);
        }
        let body =
            bytes
                .get(at..)
                .filter(|body| body.len() == end)
                .ok_or(CodecError::malformed(
                    "chunk length does not match its slots",
                ))?;
        Ok(Chunk {
            ends,
            body: body.to_vec(),
        })
    }

    /// Where each slot of an encoded chunk lies in it (an empty slot as an empty range), for a
    /// reader that wants most of them: the lengths are read once, not once per slot.
    pub fn slot_ranges(
        bytes: &[u8],
        out: &mut Vec<std::ops::Range<usize>>,
    ) -> Result<(), CodecError> {
        out.clear();
        let mut at = 0;
        let count = read_varint(bytes, &mut at)?;
        if count > CHUNK_SLOTS {
            return Err(CodecError::malformed(format!("chunk with {count} slots")));
        }
        let mut end = 0usize;
        for _ in 0..count {
            let start = end;
            end = end
                .checked_add(read_varint(bytes, &mut at)? as usize)
                .ok_or(CodecError::malformed("chunk offset overflow"))?;
            out.push(start..end);
        }
        if bytes.len().checked_sub(at) != Some(end) {
            return Err(CodecError::malformed(
                "chunk length does not match its slots",
            ));
        }
        for range in out.iter_mut() {
            *range = range.start + at..range.end + at;
        }
        Ok(())
    }

    /// One slot of an encoded chunk without decoding the others: `None` when the slot is
    /// empty or past the end.
    pub fn slot_in(bytes: &[u8], slot: usize) -> Result<Option<&[u8]>, CodecError> {
        let mut at = 0;
        let count = read_varint(bytes, &mut at)? as usize;
        if slot >= count {
            return Ok(None);
        }
        let mut start = 0usize;
        let mut len = 0usize;
        for i in 0..count {
            let l = read_varint(bytes, &mut at)? as usize;
            if i < slot {
                start += l;
            } else if i == slot {
                len = l;
            }
        }
        let begin = at
            .checked_add(start)
            .ok_or(CodecError::malformed("chunk offset overflow"))?;
        let end = begin
            .checked_add(len)
            .ok_or(CodecError::malformed("chunk offset overflow"))?;
        if end > bytes.len() {
            return Err(CodecError::malformed("chunk shorter than its slots"));
        }
        Ok((len > 0).then(|| &bytes[begin..end]))
    }

    pub(super) fn start(&self, slot: usize) -> usize {
        slot.checked_sub(1)
            .and_then(|prev| self.ends.get(prev))
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn slot_len(&self, slot: usize) -> usize {
        self.ends.get(slot).map_or(0, |end| end - self.start(slot))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        write_varint(&mut out, self.ends.len() as u64);
        for slot in 0..self.ends.len() {
            write_varint(&mut out, self.slot_len(slot) as u64);
        }
        out.extend_from_slice(&self.body);
        out
    }

    pub fn encoded_len(&self) -> usize {
        varint_len(self.ends.len() as u64)
            + (0..self.ends.len())
                .map(|slot| varint_len(self.slot_len(slot) as u64))
                .sum::<usize>()
            + self.body.len()
    }

    /// Whether a record of `len` bytes still fits in `limit` bytes with the others.
    pub fn fits(&self, len: usize, limit: usize) -> bool {
        self.ends.is_empty() || self.encoded_len() + 2 + varint_len(len as u64) + len <= limit
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No message in it (all slots empty).
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    pub fn push(&mut self, record: &[u8]) {
        self.body.extend_from_slice(record);
        self.ends.push(self.body.len());
    }

    pub fn get(&self, slot: usize) -> Option<&[u8]> {
        let end = *self.ends.get(slot)?;
        let start = self.start(slot);
        (end > start).then(|| &self.body[start..end])
    }

    /// Empties a slot; its number is never reused.
    pub fn clear(&mut self, slot: usize) {
        let len = self.slot_len(slot);
        if len == 0 {
            return;
        }
        let start = self.start(slot);
        self.body.drain(start..start + len);
        for end in self.ends.iter_mut().skip(slot) {
            *end -= len;
        }
    }
}

/// How many message numbers a conversation record holds before they move to a block: enough
/// that most conversations never need a block, few enough that rewriting the record stays
/// cheap.
pub const RECENT: usize = 64;

/// Ascending sequence numbers as varint differences (a conversation block).
pub fn write_deltas(seqs: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(seqs.len() * 3);
    let mut last = 0;
    for seq in seqs {
        write_varint(&mut out, seq.wrapping_sub(last));
        last = *seq;
    }
    out
}

pub fn read_deltas(bytes: &[u8]) -> Result<Vec<u64>, CodecError> {
    let mut last = 0u64;
    Ok(read_seqs(bytes)?
        .into_iter()
        .map(|d| {
            last = last.wrapping_add(d);
            last
        })
        .collect())
}

/// Varints to the end of `bytes`.
pub(super) fn read_seqs(bytes: &[u8]) -> Result<Vec<u64>, CodecError> {
    let mut at = 0;
    let mut seqs = Vec::with_capacity(1);
    while at < bytes.len() {
        seqs.push(read_varint(bytes, &mut at)?);
    }
    Ok(seqs)
}

pub(super) fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

pub(super) fn read_varint(bytes: &[u8], at: &mut usize) -> Result<u64, CodecError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes
            .get(*at)
            .ok_or(CodecError::malformed("chunk ends inside a length"))?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(CodecError::malformed("chunk length too long"))
}

/// The dedupe key of a delivery: 8 bytes of SHA-256 over channel and platform id. A fixed,
/// short key keeps the dedupe index at about 16 bytes an entry whatever the platform's ids look
/// like; the store compares the stored message's channel and id, so a collision (or an id
/// crafted to collide) costs a lookup, never a lost message.
pub fn dedupe_hash(channel: ChannelKind, id: &str) -> [u8; 8] {
    let mut hasher = Sha256::new();
    hasher.update([channel_code(channel)]);
    hasher.update(id.as_bytes());
    let digest = hasher.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}
