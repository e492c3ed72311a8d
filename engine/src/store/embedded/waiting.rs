//! The replies waiting to be sent, one record a message chunk ([`Space::Waiting`]). A reply's id
//! is its message's number, so the chunk's number and a slot name it, and the record lists the
//! waiting slots with their channel codes, two bytes each, in slot order. Intake queues a reply
//! with most messages, and the writer pays for every key it inserts (a walk of the key's B-tree
//! leaf) more than for the bytes: a key a reply cost it about as much as the message's dedupe
//! key, a record a chunk is rewritten once a transaction (BENCHMARKS.md, "Ingest in batches").

use std::collections::btree_map::Entry;

use super::*;
use crate::store::StoreError;

/// Reply `id`'s slot in its chunk's waiting record (a chunk has 256 slots, so it fits a byte).
pub(super) fn slot(id: u64) -> u8 {
    codec::slot_of(id) as u8
}

/// The channel code of waiting slot `slot` in `record`, if it waits.
pub(super) fn channel_in(record: &[u8], slot: u8) -> Option<u8> {
    record
        .chunks_exact(2)
        .find(|pair| pair[0] == slot)
        .map(|pair| pair[1])
}

/// Marks `slot` in `record` as waiting on `channel`, or (`None`) as no longer waiting.
pub(super) fn set(record: &mut Vec<u8>, slot: u8, channel: Option<u8>) {
    let at = record
        .chunks_exact(2)
        .position(|pair| pair[0] >= slot)
        .unwrap_or(record.len() / 2)
        * 2;
    let present = record.get(at) == Some(&slot);
    match (channel, present) {
        (Some(code), true) => record[at + 1] = code,
        (Some(code), false) => {
            record.splice(at..at, [slot, code]);
        }
        (None, true) => {
            record.drain(at..at + 2);
        }
        (None, false) => {}
    }
}

/// The waiting replies of chunk `number`'s `record`: id and channel code, in id order.
pub(super) fn entries(
    shared: &Shared,
    number: u64,
    record: &[u8],
) -> Result<impl Iterator<Item = (u64, u8)>, StoreError> {
    if !record.len().is_multiple_of(2) {
        return Err(shared.corrupt_seq(
            number * codec::CHUNK_SLOTS,
            "its waiting replies: a record of odd length",
        ));
    }
    let first = number * codec::CHUNK_SLOTS;
    Ok(record
        .chunks_exact(2)
        .map(move |pair| (first + u64::from(pair[0]), pair[1])))
}

/// What [`page`] returns: waiting replies (id, channel code) in id order, and the chunk to go
/// on from, `None` at the end.
pub(super) type Page = (Vec<(u64, u8)>, Option<u64>);

/// The waiting replies in the records of up to 256 chunks from chunk `from` on.
pub(super) fn page(kv: &mut dyn KvRead, shared: &Shared, from: u64) -> Result<Page, StoreError> {
    const PAGE: usize = 256;
    let records = kv.scan(Space::Waiting, &key::id(from), None, PAGE)?;
    let mut out = Vec::new();
    for (k, v) in &records {
        let number = key::tail(k).ok_or_else(|| shared.corrupt(k, "short key"))?;
        out.extend(entries(shared, number, v)?);
    }
    let next = match records.last() {
        Some((k, _)) if records.len() == PAGE => key::tail(k).and_then(|n| n.checked_add(1)),
        _ => None,
    };
    Ok((out, next))
}

/// The ids of every waiting reply, in order.
pub(super) fn all_ids(kv: &mut dyn KvRead, shared: &Shared) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    let mut from = Some(0);
    while let Some(chunk) = from {
        let (entries, next) = page(kv, shared, chunk)?;
        ids.extend(entries.into_iter().map(|(id, _)| id));
        from = next;
    }
    Ok(ids)
}

impl Tx<'_> {
    /// Marks reply `id` as waiting to be sent on `channel`, or (`None`) as no longer waiting:
    /// its chunk's record is read once a batch and rewritten in the overlay.
    pub(super) fn set_waiting(&mut self, id: u64, channel: Option<u8>) -> Result<(), StoreError> {
        let k = key::id(codec::chunk_of(id));
        self.writes += 1;
        // One search of the overlay: this runs for nearly every message.
        let record = match self
            .overlay
            .space_mut(Space::Waiting)
            .entry(overlay::Key::new(&k))
        {
            Entry::Occupied(written) => written.into_mut(),
            Entry::Vacant(first) => first.insert(self.kv.get(Space::Waiting, &k)?),
        };
        let mut bytes = record.take().unwrap_or_default();
        set(&mut bytes, slot(id), channel);
        // An empty record is deleted (a delete of a key never written costs nothing).
        *record = (!bytes.is_empty()).then_some(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_keeps_its_slots_in_order_with_their_channels() {
        let mut record = Vec::new();
        set(&mut record, 7, Some(2));
        set(&mut record, 3, Some(1));
        set(&mut record, 255, Some(4));
        set(&mut record, 7, Some(5));
        assert_eq!(record, [3, 1, 7, 5, 255, 4]);
        assert_eq!(channel_in(&record, 7), Some(5));
        assert_eq!(channel_in(&record, 4), None);
        set(&mut record, 3, None);
        set(&mut record, 4, None);
        assert_eq!(record, [7, 5, 255, 4]);
    }
}
