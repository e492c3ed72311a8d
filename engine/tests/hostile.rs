//! Hostile input, generated: whatever a customer or a broken file sends, the normaliser, the
//! matcher and the pipeline give an answer, an escalation or a log for every message, never a
//! panic; a malformed examples line is an error with its position; and a rulebook with one
//! file damaged (cut off, or a stretch replaced by anything) loads, or gives errors that point
//! into its files. Bounded: a fixed number of cases, about ten seconds in a debug build.

use std::path::PathBuf;
use std::sync::LazyLock;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use webcare_engine::examples::parse_examples;
use webcare_engine::normalize::normalize;
use webcare_engine::rulebook::{RulebookError, RulebookSource, SourceFile};
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

/// The files of the embedded rulebook a governance lead edits, by role.
const ROLES: [&str; 9] = [
    "rulebook",
    "topics",
    "templates",
    "teams",
    "lexicon",
    "tests",
    "replies",
    "escalation",
    "governance",
];

/// The embedded rulebook with the file of `role` replaced by `text`.
fn with_file(role: &str, text: String) -> RulebookSource {
    let mut source = RulebookSource::embedded();
    let file = match role {
        "rulebook" => &mut source.rulebook,
        "topics" => &mut source.topics,
        "templates" => &mut source.templates,
        "teams" => &mut source.teams,
        "lexicon" => &mut source.lexicon,
        "tests" => source
            .tests
            .as_mut()
            .expect("the embedded rulebook has tests"),
        "replies" => source
            .replies
            .as_mut()
            .expect("the embedded rulebook has replies"),
        "escalation" => &mut source.escalation,
        _ => &mut source.governance,
    };
    file.text = text;
    source
}

/// A character boundary of `text` at or before byte `n`.
fn boundary(text: &str, n: usize) -> usize {
    let mut n = n.min(text.len());
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// What an editor can leave in a rulebook file: a stray quote, a bracket, a control character,
/// half a line, an odd key, or anything at all.
fn edit() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        r#"["'\\\[\]{}=#\n\r\t\x00\x{feff}a-z0-9 .,:()+*|]{0,24}"#,
        r#"\n[a-z_]{1,12} = ("[a-z_ ]{0,12}"|[0-9]{1,12}|-[0-9]{1,20}|true|\[\]|\{\})\n"#,
        any::<String>(),
    ]
}

proptest! {
    // A rulebook that compiles costs its scripts and keyword automata (the classifier is
    // cached, its examples do not change here), so fewer cases than above.
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Whatever one file of a rulebook holds (cut off anywhere, a stretch replaced by anything),
    /// loading it gives a rulebook or errors that point into the files (line and column within
    /// them), never a panic.
    #[test]
    fn a_damaged_rulebook_file_gives_a_rulebook_or_errors_that_point_into_it(
        role in proptest::sample::select(&ROLES[..]),
        start in any::<proptest::sample::Index>(),
        len in 0usize..200,
        cut in any::<bool>(),
        replacement in edit(),
    ) {
        let source = RulebookSource::embedded();
        let original = source
            .files()
            .into_iter()
            .find(|f| f.role == role)
            .map(|f| f.text)
            .unwrap_or_default();
        let from = boundary(&original, start.index(original.len() + 1));
        let text = if cut {
            original[..from].to_owned()
        } else {
            let to = boundary(&original, from + len).max(from);
            format!("{}{replacement}{}", &original[..from], &original[to..])
        };
        let texts: Vec<(String, String)> = with_file(role, text.clone())
            .files()
            .into_iter()
            .map(|f| (f.path, f.text))
            .collect();
        if let Err(errors) = Rulebook::compile(with_file(role, text)) {
            prop_assert!(!errors.0.is_empty());
            for error in &errors.0 {
                let shown = error.to_string();
                prop_assert!(!shown.trim().is_empty());
                if let RulebookError::Invalid { at, message } = error {
                    prop_assert!(!message.trim().is_empty(), "{}", shown);
                    prop_assert!(at.line >= 1 && at.column >= 1, "{}", shown);
                    let path = at.file.display().to_string();
                    if let Some((_, text)) = texts.iter().find(|(p, _)| *p == path) {
                        // A line past the end is the end of the file (a missing closing
                        // bracket is found there).
                        let lines = text.split('\n').count();
                        prop_assert!(at.line <= lines + 1, "{} (the file has {} lines)", shown, lines);
                    }
                }
            }
        }
    }
}
