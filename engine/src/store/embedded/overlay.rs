//! The ordered overlay a writer batch writes into before its transaction reaches the backend:
//! its reads see the batch's own writes, and the backend gets every table's writes sorted by
//! key, which is how a B-tree takes them cheapest.

use std::collections::BTreeMap;

use super::kv::Space;

/// One batch's writes, per key space; `None` is a delete. Ordered, so the batch reaches the
/// backend sorted by key and each B-tree page is changed once, in one pass.
#[derive(Default)]
pub(super) struct Overlay {
    spaces: [BTreeMap<Key, Option<Vec<u8>>>; Space::ALL.len()],
}

/// A key in the [`Overlay`]. Nearly all are short (the fixed-width spaces' 8 and 16 bytes, a
/// conversation's or an escalation's record) and are kept inline: as a `Vec` each was an
/// allocation and a free in the writer, for every write of every message. Ordered as its
/// bytes; two inline keys compare as integers (see [`Ord`]), so the overlay is searched with a
/// `Key`, not with the bytes.
#[derive(Clone)]
pub(super) enum Key {
    Inline(u8, [u8; Key::INLINE]),
    Long(Box<[u8]>),
}

impl Key {
    /// The longest key kept inline: a key and its tag take 32 bytes.
    const INLINE: usize = 30;

    pub(super) fn new(bytes: &[u8]) -> Key {
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= Key::INLINE => {
                let mut inline = [0; Key::INLINE];
                inline[..bytes.len()].copy_from_slice(bytes);
                Key::Inline(len, inline)
            }
            _ => Key::Long(bytes.into()),
        }
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Key::Inline(len, bytes) => &bytes[..usize::from(*len)],
            Key::Long(bytes) => bytes,
        }
    }
}

impl std::borrow::Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        **self == **other
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// As the keys' bytes compare. Inline keys are padded with zeros, which order them the
    /// same way: where one key's padding meets a byte of the other's, the shorter is a prefix
    /// of the longer (all bytes before agree) and comes first, as does a byte below a greater;
    /// and two keys whose padded bytes agree differ only in trailing zeros, which the lengths
    /// settle. The padded bytes are compared eight at a time, as big-endian numbers: the
    /// overlay compares keys at every lookup, and a call to `memcmp` each was most of that.
    /// (Comparing only the first eight bytes so, and the rest with `memcmp`, cost more: the
    /// conversations' keys mostly agree there.)
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        match (self, other) {
            (Key::Inline(len, bytes), Key::Inline(other_len, other_bytes)) => {
                for at in (0..Key::INLINE).step_by(8) {
                    let (a, b) = (word(bytes, at), word(other_bytes, at));
                    if a != b {
                        return a.cmp(&b);
                    }
                }
                len.cmp(other_len)
            }
            _ => (**self).cmp(&**other),
        }
    }
}

/// The eight padded bytes of an inline key from `at` as a big-endian number, zeros past its
/// end.
fn word(bytes: &[u8; Key::INLINE], at: usize) -> u64 {
    let mut word = [0; 8];
    let end = (at + 8).min(Key::INLINE);
    word[..end - at].copy_from_slice(&bytes[at..end]);
    u64::from_be_bytes(word)
}

impl Overlay {
    pub(super) fn space(&self, space: Space) -> &BTreeMap<Key, Option<Vec<u8>>> {
        &self.spaces[space as usize]
    }

    pub(super) fn space_mut(&mut self, space: Space) -> &mut BTreeMap<Key, Option<Vec<u8>>> {
        &mut self.spaces[space as usize]
    }

    pub(super) fn into_sorted(self) -> impl Iterator<Item = (Space, Key, Option<Vec<u8>>)> {
        Space::ALL
            .into_iter()
            .zip(self.spaces)
            .flat_map(|(space, writes)| writes.into_iter().map(move |(k, v)| (space, k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Overlay keys order as their bytes, inline or not, with zeros and lengths around the
    /// inline limit and the eight-byte words.
    #[test]
    fn overlay_keys_order_as_their_bytes() {
        let mut keys: Vec<Vec<u8>> = vec![Vec::new()];
        for len in [1, 2, 7, 8, 9, 15, 16, 17, 24, 29, 30, 31, 40] {
            for fill in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut k = vec![fill; len];
                keys.push(k.clone());
                k[len - 1] = fill.wrapping_add(1);
                keys.push(k.clone());
                k[0] = 0;
                keys.push(k);
            }
        }
        keys.push(b"c\x01\x00\x00\x00\x02c1".to_vec());
        keys.push(b"c\x01\x00\x00\x00\x03c10".to_vec());
        for a in &keys {
            for b in &keys {
                let (ka, kb) = (Key::new(a), Key::new(b));
                assert_eq!(ka.cmp(&kb), a.cmp(b), "{a:?} {b:?}");
                assert_eq!(ka == kb, a == b);
                assert_eq!(&*ka, &a[..]);
            }
        }
    }
}
