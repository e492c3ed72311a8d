//! Tests of the layout itself that need its private parts: keys that collide, keys that parse.

use super::*;

/// Two deliveries whose dedupe hashes collide (forced: SHA-256 gives no real pair) are
/// still told apart by the stored channel and id, and deleting one keeps the other.
#[test]
fn colliding_dedupe_hashes_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webcare.redb");
    let kv: Arc<dyn Kv> = Arc::new(crate::store::redb::RedbKv::open(&path, None).unwrap());
    let store = Embedded::new(kv, Backend::Redb, path, None).unwrap();
    let rulebook = crate::Rulebook::embedded().unwrap();
    let at = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
    let accept = |id: &str, author: &str| {
        let mut m = crate::Inbound::from_text(id, ChannelKind::Telegram, "Hallo", at);
        m.author = author.into();
        m.conversation = author.into();
        crate::Intake::new(&rulebook, &store).accept(m, at).unwrap()
    };
    let a = accept("a", "ann");
    let b = accept("b", "bob");
    // Put b at a's hash and a after it, as if their hashes had collided. (SHA-256 gives no
    // real pair to test with.)
    let hash_a = codec::dedupe_hash(ChannelKind::Telegram, "a");
    let hash_b = codec::dedupe_hash(ChannelKind::Telegram, "b");
    let (seq_a, seq_b) = (a.seq, b.seq);
    let at_a = u64::from_be_bytes(hash_a);
    store
        .write(move |tx| {
            tx.delete(Space::Dedupe, &hash_b);
            tx.put(Space::Dedupe, &key::id(at_a), seq_b.to_be_bytes().to_vec());
            tx.put(
                Space::Dedupe,
                &key::id(at_a.wrapping_add(1)),
                seq_a.to_be_bytes().to_vec(),
            );
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let found = |id: &str| store.message(ChannelKind::Telegram, id).unwrap();
    assert_eq!(found("a").map(|m| m.seq), Some(seq_a));
    assert!(accept("a", "ann").duplicate);

    // Deleting b leaves a mark, so a is still found behind it; a new delivery with the
    // same hash goes to the mark.
    let free = store
        .write(move |tx| {
            tx.forget_delivery(hash_a, seq_b)?;
            Ok::<_, StoreError>(tx.find_message(hash_a, ChannelKind::Telegram, "new")?.free)
        })
        .unwrap();
    assert_eq!(free, key::id(at_a));
    assert_eq!(found("a").map(|m| m.seq), Some(seq_a));
    let mut snap = store.snapshot().unwrap();
    assert_eq!(snap.dedupe_at(&key::id(at_a)).unwrap(), Some(None));
    drop(snap);
    store.forget_author("ann", "dpo", at).unwrap();
    assert!(found("a").is_none());
    let mut snap = store.snapshot().unwrap();
    assert_eq!(snap.dedupe_at(&key::id(at_a + 1)).unwrap(), None);
}

#[test]
fn time_keys_sort_by_time_including_before_1970() {
    let a = key::time(-5, 9);
    let b = key::time(3, 1);
    let c = key::time(3, 2);
    assert!(a < b && b < c);
}

#[test]
fn prefix_end_is_past_every_key_with_the_prefix() {
    assert_eq!(key::prefix_end(&[1, 2]), vec![1, 3]);
    assert_eq!(key::prefix_end(&[1, 255]), vec![2]);
    let p = key::author_prefix("ann");
    assert!(
        key::author("ann", crate::ChannelKind::Telegram, "\u{10FFFF}\u{10FFFF}")
            < key::prefix_end(&p)
    );
    // A longer author with the same start is not under the prefix: lengths differ.
    assert!(!key::author_prefix("anne").starts_with(&p));
}

#[test]
fn successors_carry_and_end() {
    assert_eq!(key::successor(&[0, 255]), Some(vec![1, 0]));
    assert_eq!(key::successor(&[255, 255]), None);
}

#[test]
fn keys_parse_back() {
    let k = key::conv(crate::ChannelKind::Discord, "chat-1");
    assert_eq!(key::parse_conv(&k).map(|(_, id)| id), Some("chat-1".into()));
    let p = key::author_prefix("ann");
    let k = key::author("ann", crate::ChannelKind::Discord, "chat-1");
    assert_eq!(
        key::parse_author(&k, p.len()).map(|(_, id)| id),
        Some("chat-1".into())
    );
}
