//! Hostile input, generated: whatever a customer or a broken file sends, the normaliser, the
//! matcher and the pipeline give an answer, an escalation or a log for every message, never a
//! panic, and a malformed examples line is an error with its position. Bounded: a fixed number
//! of cases, a few seconds in a debug build.

use std::path::PathBuf;
use std::sync::LazyLock;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use webcare_engine::examples::parse_examples;
use webcare_engine::normalize::normalize;
use webcare_engine::rulebook::SourceFile;
use webcare_engine::{Action, ChannelKind, DecideContext, Inbound, Rulebook};

static RULEBOOK: LazyLock<Rulebook> =
    LazyLock::new(|| Rulebook::embedded().unwrap_or_else(|e| panic!("default rulebook:\n{e}")));

/// Text as people and attackers send it: any Unicode, and runs of what breaks naive code
/// (control characters, combining marks, right-to-left marks, emoji, very long words).
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\u{0}-\\u{1f}\\u{202e}\\u{200b}\\u{301}\\u{fe0f}a-zA-Zé😀 .?!#@/:]{0,400}",
        ("[a-z]{1,3}", 1usize..3000).prop_map(|(s, n)| s.repeat(n)),
        proptest::collection::vec(
            "(brand|geen|niet|journalist|advocaat|rijbewjis|🔥|\\?|!)",
            0..200
        )
        .prop_map(|words| words.join(" ")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn every_message_gets_a_decision_that_can_be_carried_out(text in hostile_text()) {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
        let decision = RULEBOOK.decide(
            &Inbound::from_text("m-1", ChannelKind::Webchat, text.clone(), at),
            &DecideContext::default(),
        );
        match &decision.action {
            Action::Answer { reply, .. } => prop_assert!(!reply.trim().is_empty()),
            Action::Escalate { team, .. } => prop_assert!(!team.is_empty()),
            Action::Log => {}
        }
        // The normalised text never grows beyond a small multiple of the input.
        prop_assert!(normalize(&text).len() <= text.len() * 4 + 8);
    }

    #[test]
    fn a_malformed_examples_line_is_an_error_with_its_position(line in any::<String>()) {
        let file = SourceFile {
            path: PathBuf::from("rules/examples/x.jsonl"),
            text: format!("{{\"text\": \"hoi\", \"category\": \"question\"}}\n{line}\n"),
        };
        if let Err(errors) = parse_examples(&file) {
            for error in errors {
                prop_assert!(error.to_string().starts_with("rules/examples/x.jsonl:"), "{}", error);
            }
        }
    }
}
