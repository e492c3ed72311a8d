//! Round trips of the encoding.

use super::*;
use crate::case::{ConversationFacts, ConversationState};
use crate::message::{ChannelKind, Inbound};
use crate::mode::Mode;

#[test]
fn chunks_round_trip_and_read_one_slot() {
    let mut chunk = Chunk::default();
    for record in [&b""[..], b"", b"abc", &[7; 300], b"", b"z"] {
        chunk.push(record);
    }
    let bytes = chunk.encode();
    assert_eq!(bytes.len(), chunk.encoded_len());
    assert_eq!(Chunk::decode(&bytes), Ok(chunk.clone()));
    assert_eq!(Chunk::slot_in(&bytes, 0), Ok(None));
    assert_eq!(Chunk::slot_in(&bytes, 2), Ok(Some(&b"abc"[..])));
    assert_eq!(
        Chunk::slot_in(&bytes, 3).map(|s| s.map(<[u8]>::len)),
        Ok(Some(300))
    );
    assert_eq!(Chunk::slot_in(&bytes, 4), Ok(None));
    assert_eq!(Chunk::slot_in(&bytes, 5), Ok(Some(&b"z"[..])));
    assert_eq!(Chunk::slot_in(&bytes, 6), Ok(None));
    assert!(Chunk::decode(&bytes[..bytes.len() - 1]).is_err());

    chunk.clear(3);
    assert_eq!(chunk.get(3), None);
    assert_eq!(chunk.get(2), Some(&b"abc"[..]));
    assert_eq!(chunk.get(5), Some(&b"z"[..]));
    assert_eq!(chunk.len(), 6);
    chunk.clear(2);
    chunk.clear(5);
    assert!(chunk.is_empty());
    assert_eq!(Chunk::decode(&chunk.encode()), Ok(chunk));
}

#[test]
fn a_full_chunk_fits_one_page() {
    let mut chunk = Chunk::default();
    while chunk.fits(150, CHUNK_BYTES) {
        chunk.push(&[1; 150]);
    }
    assert!(chunk.encoded_len() <= CHUNK_BYTES);
    assert!(chunk.encoded_len() > CHUNK_BYTES - 160);
    // A record larger than a page still gets a chunk of its own.
    assert!(Chunk::default().fits(10_000, CHUNK_BYTES));
}

#[test]
fn an_encoded_message_decodes_as_the_stored_record() {
    struct NoSymbols;
    impl Intern for NoSymbols {
        fn intern(&mut self, _: &str) -> Result<u32, StoreError> {
            Ok(7)
        }
    }
    let at = DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
    let mut message = Inbound::from_text("m1", ChannelKind::Discord, "Hallo daar", at);
    message.metadata.insert("lang".into(), "nl".into());
    let rulebook = crate::Rulebook::embedded().expect("the embedded rulebook loads");
    let decision = rulebook.decide(&message, &Default::default());
    let bytes = encode_message(
        &message,
        &decision,
        &ConversationFacts::default(),
        Intake::default(),
        at + chrono::Duration::seconds(2),
        &mut NoSymbols,
    )
    .unwrap();
    let rec: MessageRec = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(rec.id, "m1");
    assert_eq!(rec.text, "Hallo daar");
    assert_eq!(rec.metadata, vec![("lang".to_owned(), "nl".to_owned())]);
    assert_eq!(rec.stored_at(), micros(at) + 2_000_000);
    assert_eq!(rec.decision.rulebook, Text::Sym(7));
    assert_eq!(rec.intake(), Intake::default());
}

#[test]
fn the_state_byte_keeps_state_mode_and_shadow_flag_apart() {
    for state in [
        ConversationState::Bot,
        ConversationState::Human,
        ConversationState::Closed,
    ] {
        for mode in Mode::ALL {
            for has_shadow in [false, true] {
                let intake = Intake { mode, has_shadow };
                let byte = intake.pack(state);
                assert_eq!(Intake::unpack(byte), intake);
                assert_eq!(state_from(byte & STATE_MASK), state);
            }
        }
    }
    // A record from before modes existed is a live one without shadow.
    assert_eq!(
        Intake::unpack(state_code(ConversationState::Human)),
        Intake::default()
    );
}

#[test]
fn deltas_round_trip() {
    let seqs = [3, 4, 300, 70_000, 70_001];
    assert_eq!(read_deltas(&write_deltas(&seqs)), Ok(seqs.to_vec()));
    assert_eq!(read_deltas(&[]), Ok(Vec::new()));
}

#[test]
fn varints_have_the_length_they_say() {
    for v in [0, 1, 127, 128, 16_383, 16_384, u64::MAX] {
        let mut out = Vec::new();
        write_varint(&mut out, v);
        assert_eq!(out.len(), varint_len(v), "{v}");
        let mut at = 0;
        assert_eq!(read_varint(&out, &mut at), Ok(v));
    }
}

/// The private-word check gives `str::contains`'s answer, whether a place is checked by hand
/// or (after many near misses, in one record) by the searcher.
#[test]
fn private_words_are_found_as_contains_finds_them() {
    let texts = [
        "",
        "ab",
        "abc",
        "xabc",
        "abcx",
        "aaaaab",
        "aab",
        "aaaa",
        "ab ab abc",
        "héllo wörld",
        "wörld",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
    ];
    let needles = [
        ("abc", "aab"),
        ("aaab", "wörld"),
        ("ab", "zz"),
        ("aaaaaaaaaaaaaaaaaaaaab", "héllo"),
    ];
    for (text_needle, id_needle) in needles {
        // The same `Private` for every text, as for the strings of one record, so the later
        // ones meet the searcher.
        let private = Private::new([text_needle, id_needle]);
        for round in 0..40 {
            for text in texts {
                let expected = [text_needle, id_needle]
                    .iter()
                    .any(|p| p.len() >= 3 && text.contains(p));
                assert_eq!(
                    private.in_text(text),
                    expected,
                    "{text:?} for {text_needle:?}/{id_needle:?}, round {round}"
                );
            }
        }
    }
}
