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

fn open(path: &std::path::Path) -> Embedded {
    let kv: Arc<dyn Kv> = Arc::new(crate::store::redb::RedbKv::open(path, None).unwrap());
    Embedded::new(kv, Backend::Redb, path.to_owned(), None).unwrap()
}

/// The embedded rulebook, loaded once: loading it trains the classifier.
fn rulebook() -> &'static crate::Rulebook {
    static RULEBOOK: std::sync::OnceLock<crate::Rulebook> = std::sync::OnceLock::new();
    RULEBOOK.get_or_init(|| crate::Rulebook::embedded().unwrap())
}

/// Message `id` from `author`, in a conversation of their own.
fn accept(store: &Embedded, id: &str, author: &str) -> IntakeReceipt {
    accept_in(store, id, author, author)
}

fn accept_in(store: &Embedded, id: &str, author: &str, conversation: &str) -> IntakeReceipt {
    let rulebook = rulebook();
    let at = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
    let mut m = crate::Inbound::from_text(id, ChannelKind::Telegram, "Hallo", at);
    m.author = author.into();
    m.conversation = conversation.into();
    crate::Intake::new(rulebook, store).accept(m, at).unwrap()
}

/// Dedupe, conversation index and author entries wait in memory and go to their tables in
/// bulk (here from 8 entries on, see `deferred::MIN`; a message in a new conversation adds
/// three). A repeated delivery is recognised, its conversation found and listed under its
/// author, wherever its entries are: waiting, written, or read back from the chunk and the
/// conversation's record when a copy made while they waited is opened.
#[test]
fn a_repeated_delivery_is_recognised_wherever_its_dedupe_entry_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webcare.redb");
    let store = open(&path);
    let ids: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    let seqs: Vec<u64> = ids.iter().map(|id| accept(&store, id, id).seq).collect();
    // Written in bulk after every third message; the last two's entries wait.
    assert_eq!(store.shared.deferred.current().len(), 6);
    let recognised = |store: &Embedded| {
        for (id, seq) in ids.iter().zip(&seqs) {
            let again = accept(store, id, id);
            assert!(again.duplicate, "`{id}` was taken in twice");
            assert_eq!(again.seq, *seq);
            let found = store.message(ChannelKind::Telegram, id).unwrap();
            assert_eq!(found.map(|m| m.seq), Some(*seq), "`{id}` is not found");
            let conversation = Store::conversation(store, ChannelKind::Telegram, id).unwrap();
            assert_eq!(
                conversation.map(|c| c.messages),
                Some(1),
                "`{id}`'s conversation"
            );
            assert_eq!(
                store.author_conversations(id).unwrap(),
                [(ChannelKind::Telegram, id.clone())],
                "`{id}`'s conversations"
            );
        }
        let listed = Store::conversation_keys(store).unwrap();
        assert!(
            ids.iter()
                .all(|id| listed.contains(&(ChannelKind::Telegram, id.clone())))
        );
    };
    recognised(&store);

    let copy = dir.path().join("copy.redb");
    store.copy_to(&copy).unwrap();
    drop(store);
    let restored = open(&copy);
    assert_eq!(
        restored.shared.deferred.current().len(),
        6,
        "read back from the chunks and the conversations"
    );
    recognised(&restored);
    assert!(!accept(&restored, "m10", "m10").duplicate);
    drop(restored);

    // Stopping wrote the waiting entries, so nothing is read back.
    let reopened = open(&path);
    assert_eq!(reopened.shared.deferred.current().len(), 0);
    recognised(&reopened);
}

/// A delivery erased while its dedupe entry waits in memory is gone from there too, and is
/// not brought back from the chunks when a copy is opened.
#[test]
fn an_erased_delivery_leaves_no_waiting_dedupe_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webcare.redb");
    let store = open(&path);
    // One conversation: two dedupe entries, its index entry and two author keys wait.
    let kept = accept_in(&store, "kept", "bob", "desk").seq;
    accept_in(&store, "erased", "ann", "desk");
    assert_eq!(store.shared.deferred.current().len(), 5);
    let at = chrono::DateTime::from_timestamp(1_795_000_100, 0).unwrap();
    // `forget` finds ann's conversation through her waiting author key.
    store.forget_author("ann", "dpo", at).unwrap();
    assert_eq!(store.shared.deferred.current().len(), 3);
    assert!(store.author_conversations("ann").unwrap().is_empty());
    assert!(
        store
            .message(ChannelKind::Telegram, "erased")
            .unwrap()
            .is_none()
    );

    let copy = dir.path().join("copy.redb");
    store.copy_to(&copy).unwrap();
    let restored = open(&copy);
    assert_eq!(restored.shared.deferred.current().len(), 3);
    assert!(restored.author_conversations("ann").unwrap().is_empty());
    assert!(
        restored
            .message(ChannelKind::Telegram, "erased")
            .unwrap()
            .is_none()
    );
    // Its tombstone answers a repeated delivery: acknowledged, nothing stored.
    let again = accept_in(&restored, "erased", "ann", "desk");
    assert!(again.duplicate);
    assert_eq!(again.decision.diagnostics.rules, ["engine:erased"]);
    assert!(
        restored
            .message(ChannelKind::Telegram, "erased")
            .unwrap()
            .is_none()
    );
    assert_eq!(
        restored
            .message(ChannelKind::Telegram, "kept")
            .unwrap()
            .map(|m| m.seq),
        Some(kept)
    );
}

/// A backend whose next commit reaches the disk and still reports a failure, as a commit can
/// when the disk fails during its sync.
struct FailsAfterWriting {
    inner: crate::store::redb::RedbKv,
    fail_next: std::sync::atomic::AtomicBool,
}

impl Kv for FailsAfterWriting {
    fn snapshot(&self) -> Result<Box<dyn KvRead + '_>, StoreError> {
        self.inner.snapshot()
    }

    fn transact(
        &self,
        f: &mut dyn FnMut(&mut dyn KvTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.inner.transact(f)?;
        if self
            .fail_next
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StoreError::Backend {
                path: PathBuf::from("test"),
                reason: "the sync failed after the write".into(),
            });
        }
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner.size_on_disk()
    }
}

/// A commit that reports a failure may have reached the disk anyway; its deliveries' dedupe
/// entries, which wait in memory, are then read back from their chunks, so a repeated delivery
/// of a message stored that way is recognised, not taken in twice.
#[test]
fn a_commit_that_failed_after_writing_leaves_its_deliveries_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webcare.redb");
    let kv = Arc::new(FailsAfterWriting {
        inner: crate::store::redb::RedbKv::open(&path, None).unwrap(),
        fail_next: Default::default(),
    });
    let store = Embedded::new(kv.clone(), Backend::Redb, path, None).unwrap();
    accept(&store, "before", "ann");
    kv.fail_next
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let rulebook = rulebook();
    let at = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
    let message = crate::Inbound::from_text("lost?", ChannelKind::Telegram, "Hallo", at);
    assert!(
        crate::Intake::new(rulebook, &store)
            .accept(message, at)
            .is_err()
    );
    let stored = store.message(ChannelKind::Telegram, "lost?").unwrap();
    assert!(stored.is_some(), "the commit reached the disk");
    let again = accept(&store, "lost?", "ann");
    assert!(again.duplicate, "taken in twice");
    assert_eq!(Some(again.seq), stored.map(|m| m.seq));
    assert!(accept(&store, "before", "ann").duplicate);
    // Its numbers are taken: a new message in a new conversation gets numbers of its own, and
    // the conversation it started keeps its record.
    let after = accept(&store, "after", "carl");
    assert!(!after.duplicate);
    assert!(after.seq > again.seq);
    for (conversation, author) in [("carl", "carl"), ("lost?", "anonymous")] {
        let found = Store::conversation(&store, ChannelKind::Telegram, conversation)
            .unwrap()
            .unwrap();
        assert_eq!(found.id, conversation);
        assert_eq!(found.participants.into_iter().collect::<Vec<_>>(), [author]);
    }
}
