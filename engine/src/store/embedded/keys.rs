//! Key construction: every function returns a complete key or a prefix of one. Fixed-width
//! keys sort as big-endian numbers; times sort with the sign bit flipped; strings in variable
//! keys are length-prefixed so no id can run into the next field.

use super::ChannelKind;
use crate::store::codec::channel_code;

/// A conversation's number, by channel and the platform's conversation id: the index to its
/// record ([`CONV_REC`]).
pub const CONV: u8 = b'c';
/// A conversation's record, by its number: numbers are handed out in order, so the records of
/// new conversations and of the ones in use lie together at the end, and a commit rewrites few
/// leaves for them, however the platform's ids scatter.
pub const CONV_REC: u8 = b'C';
pub const CONV_BLOCK: u8 = b'k';
pub const ESC: u8 = b'e';
pub const ESC_OPEN: u8 = b'n';
pub const AUTHOR: u8 = b'a';
pub const AUDIT: u8 = b'u';
pub const SYM: u8 = b'y';
pub const VERSION: u8 = b'v';
pub const ACTIVATION: u8 = b'w';
pub const META: u8 = b'z';
pub const SHADOW: u8 = b's';
/// Format 2's case state of an escalation, as JSON: only `upgrade` reads it, and moves it into
/// the escalation record.
pub const CASE: u8 = b'x';
/// When a customer (by author) was last asked for a satisfaction score.
pub const SURVEYED: u8 = b'q';
/// A platform's receipt of a sent reply ([`crate::case::outbox::Receipt`]), by outbox id;
/// JSON, and apart from the outbox record so that record's format and the hot path that reads
/// it stay as they are.
pub const RECEIPT: u8 = b'r';
/// A delivery `forget` erased ("gone"): keyed by a digest of channel and id, so a repeated
/// delivery is recognised without keeping the id.
pub const ERASED: u8 = b'g';

fn str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn tagged(kind: u8, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(kind);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// A number key of the fixed-width spaces (chunks, outbox ids).
pub fn id(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub fn pair(a: u64, b: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&b.to_be_bytes());
    k
}

/// Times sort correctly as unsigned big-endian once the sign bit is flipped.
pub fn time(micros: i64, seq: u64) -> [u8; 16] {
    pair((micros as u64) ^ (1 << 63), seq)
}

pub fn conv_block(number: u64, first: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(CONV_BLOCK);
    k.extend_from_slice(&pair(number, first));
    k
}

pub fn conv_blocks(number: u64) -> Vec<u8> {
    tagged(CONV_BLOCK, number)
}

pub fn conv_rec(number: u64) -> Vec<u8> {
    tagged(CONV_REC, number)
}

pub fn esc(n: u64) -> Vec<u8> {
    tagged(ESC, n)
}
pub fn esc_open(n: u64) -> Vec<u8> {
    tagged(ESC_OPEN, n)
}
/// A format-2 case record's key.
pub fn case(n: u64) -> Vec<u8> {
    tagged(CASE, n)
}
pub fn receipt(outbox: u64) -> Vec<u8> {
    tagged(RECEIPT, outbox)
}
pub fn surveyed(author: &str) -> Vec<u8> {
    let mut k = vec![SURVEYED];
    k.extend_from_slice(author.as_bytes());
    k
}
/// The shadow decision of message `seq`.
pub fn shadow(seq: u64) -> Vec<u8> {
    tagged(SHADOW, seq)
}
pub fn audit(n: u64) -> Vec<u8> {
    tagged(AUDIT, n)
}
pub fn sym(n: u32) -> Vec<u8> {
    tagged(SYM, u64::from(n))
}
pub fn activation(n: u64) -> Vec<u8> {
    tagged(ACTIVATION, n)
}
/// The tombstone of an erased delivery, by the whole digest, so `webcare migrate` can carry it
/// to PostgreSQL, which keys it the same way.
pub fn erased(channel: ChannelKind, id: &str) -> Vec<u8> {
    erased_digest_key(&crate::store::erased_digest(channel, id))
}

pub fn erased_digest_key(digest: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(ERASED);
    k.extend_from_slice(digest);
    k
}

pub fn meta(name: &str) -> Vec<u8> {
    let mut k = vec![META];
    k.extend_from_slice(name.as_bytes());
    k
}
pub fn version(version: &str) -> Vec<u8> {
    let mut k = vec![VERSION];
    k.extend_from_slice(version.as_bytes());
    k
}

pub fn conv(channel: ChannelKind, conversation: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + conversation.len());
    k.push(CONV);
    k.push(channel_code(channel));
    str(&mut k, conversation);
    k
}

/// Channel code and conversation id of a conversation key.
pub fn parse_conv(k: &[u8]) -> Option<(u8, String)> {
    let (&code, rest) = k.strip_prefix(&[CONV])?.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let id = std::str::from_utf8(rest.get(4..4 + len)?).ok()?;
    Some((code, id.to_owned()))
}

pub fn author_prefix(author: &str) -> Vec<u8> {
    let mut k = vec![AUTHOR];
    str(&mut k, author);
    k
}

pub fn author(author: &str, channel: ChannelKind, conversation: &str) -> Vec<u8> {
    let mut k = author_prefix(author);
    k.push(channel_code(channel));
    str(&mut k, conversation);
    k
}

/// Channel code and conversation id at the end of an author key.
pub fn parse_author(k: &[u8], prefix_len: usize) -> Option<(u8, String)> {
    let (&code, rest) = k.get(prefix_len..)?.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let id = std::str::from_utf8(rest.get(4..4 + len)?).ok()?;
    Some((code, id.to_owned()))
}

/// The trailing big-endian number of a key.
pub fn tail(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    Some(u64::from_be_bytes(key.get(start..)?.try_into().ok()?))
}

/// The first key after every key that starts with `prefix` (variable keys).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

/// The smallest variable key after `key`.
pub fn after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// The next fixed-width key of the same length, `None` after the last.
pub fn successor(key: &[u8]) -> Option<Vec<u8>> {
    let mut next = key.to_vec();
    for byte in next.iter_mut().rev() {
        if *byte < u8::MAX {
            *byte += 1;
            return Some(next);
        }
        *byte = 0;
    }
    None
}
