//! The caller's side of intake: whether a delivery is new, a repeat or erased, and its
//! conversation's record, read from a snapshot on the caller's thread so the writer need not
//! read them again (see [`super::intake::Seen`]).

use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::store::codec::{self, ConvRec};
use crate::store::{IntakeLookup, StoredMessage};

/// The dedupe lookup and the conversation's facts for one message, from `snap`.
pub(super) fn lookup(
    snap: &mut Snapshot<'_>,
    channel: ChannelKind,
    id: &str,
    conversation: &str,
    at: DateTime<Utc>,
    today: NaiveDate,
) -> Result<IntakeLookup, StoreError> {
    Ok(match look(snap, channel, id, conversation, true, true)? {
        Look::Duplicate(first) => IntakeLookup::Duplicate(first),
        Look::Erased => IntakeLookup::Erased,
        Look::New { conv, .. } => {
            IntakeLookup::New(conv.map(|c| c.facts(at, today)).unwrap_or_default())
        }
    })
}

/// What [`look`] found.
#[allow(
    clippy::large_enum_variant,
    reason = "returned and taken apart at once; boxing would allocate for every new message"
)]
pub(super) enum Look {
    Duplicate(Box<StoredMessage>),
    Erased,
    New {
        /// The message's dedupe hash.
        hash: [u8; 8],
        conv: Option<ConvRec>,
        probed: ([u8; 8], [u8; 8]),
        free: [u8; 8],
    },
}

/// Whether `snap` holds the tombstone of any erased delivery. A batch asks once: most stores
/// hold none, and then its messages need not each be looked up among them (a SHA-256 digest
/// and a read each).
pub(super) fn has_tombstones(snap: &mut Snapshot<'_>) -> Result<bool, StoreError> {
    let prefix = [key::ERASED];
    let end = key::prefix_end(&prefix);
    Ok(!snap
        .range(Space::Records, &prefix, Some(&end), 1)?
        .is_empty())
}

/// The dedupe lookup and (when `read_conv`) the conversation's record for one message, from
/// `snap`; the tombstones of erased deliveries are looked up only when `snap` may hold some.
pub(super) fn look(
    snap: &mut Snapshot<'_>,
    channel: ChannelKind,
    id: &str,
    conversation: &str,
    tombstones: bool,
    read_conv: bool,
) -> Result<Look, StoreError> {
    let hash = codec::dedupe_hash(channel, id);
    let found = snap.find_message(hash, channel, id)?;
    if let Some((seq, rec)) = found.message {
        return Ok(Look::Duplicate(Box::new(snap.decode_stored(seq, rec)?)));
    }
    if tombstones
        && snap
            .read(Space::Records, &key::erased(channel, id))?
            .is_some()
    {
        return Ok(Look::Erased);
    }
    Ok(Look::New {
        hash,
        conv: match read_conv {
            true => snap.conv(channel, conversation)?,
            false => None,
        },
        probed: found.probed,
        free: found.free,
    })
}
