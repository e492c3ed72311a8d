//! The pipeline end to end on real rulebooks: the embedded default, and copies of it with a
//! broken or hostile script or file. These are the promises the engine makes to the people
//! who edit the rules: a mistake is pointed at precisely, and at run time it can never drop a
//! message or send an unreviewed answer.

use chrono::{TimeZone, Utc};
use webcare_engine::{
    Action, Category, ChannelKind, ConversationFacts, ConversationState, DecideContext, Decision,
    Inbound, Priority, Rulebook, RulebookSource,
};

fn monday_morning() -> chrono::DateTime<Utc> {
    // 10:00 in Amsterdam (CET, UTC+1).
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
        .single()
        .expect("valid time")
}

fn message(text: &str) -> Inbound {
    Inbound::from_text("m-1", ChannelKind::Webchat, text, monday_morning())
}

fn default_rulebook() -> Rulebook {
    Rulebook::embedded().unwrap_or_else(|e| panic!("the default rulebook must load:\n{e}"))
}

fn decide(rulebook: &Rulebook, text: &str) -> Decision {
    rulebook.decide(&message(text), &DecideContext::default())
}

fn with_escalation_script(script: &str) -> Rulebook {
    let mut source = RulebookSource::embedded();
    source.escalation.text = script.to_owned();
    Rulebook::compile(source).unwrap_or_else(|e| panic!("compiles:\n{e}"))
}

fn with_governance_script(script: &str) -> Rulebook {
    let mut source = RulebookSource::embedded();
    source.governance.text = script.to_owned();
    Rulebook::compile(source).unwrap_or_else(|e| panic!("compiles:\n{e}"))
}

/// A fail-safe decision: escalated to the default team, nothing automatic, the error kept.
fn assert_fail_safe(decision: &Decision, error_contains: &str) {
    match &decision.action {
        Action::Escalate { team, priority, .. } => {
            assert_eq!(team, "webcare");
            assert_eq!(*priority, Priority::High);
        }
        other => panic!("expected a fail-safe escalation, got {other:?}"),
    }
    let errors = decision.diagnostics.script_errors.join("\n");
    assert!(
        errors.contains(error_contains),
        "script errors {errors:?} should mention {error_contains:?}"
    );
    assert!(
        decision
            .diagnostics
            .rules
            .iter()
            .any(|r| r == "engine:fail-safe")
    );
    assert!(
        decision.action.reply().is_some(),
        "the customer still gets a holding reply"
    );
}

#[test]
fn every_golden_case_of_the_default_rulebook_passes() {
    let rulebook = default_rulebook();
    let outcomes = rulebook.run_golden();
    assert!(outcomes.len() >= 4, "the default rulebook has golden cases");
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(|o| {
            format!(
                "{} ({}): {}",
                o.case.name,
                o.case.location,
                o.failures.join("; ")
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "failing golden cases:\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_known_question_is_answered_with_its_template_and_says_why() {
    let rulebook = default_rulebook();
    let d = decide(&rulebook, "Hoe vraag ik een nieuw paspoort aan?");
    match &d.action {
        Action::Answer { template, reply } => {
            assert_eq!(template, "passport");
            assert!(reply.contains("https://"), "answers carry a link: {reply}");
        }
        other => panic!("expected an answer, got {other:?}"),
    }
    assert_eq!(d.diagnostics.category, Category::Question);
    assert_eq!(d.diagnostics.rulebook, rulebook.version);
    assert!(d.diagnostics.rules.iter().any(|r| r == "topic:passport"));
    assert!(
        d.diagnostics
            .rules
            .iter()
            .any(|r| r.starts_with("escalation.rhai:"))
    );
    assert!(d.diagnostics.reasons.iter().any(|r| r.contains("paspoort")));
}

#[test]
fn a_script_that_loops_forever_is_stopped_and_the_message_escalated() {
    let rulebook = with_escalation_script("let n = 0;\nloop { n += 1; }\nlog_only(\"never\")");
    let d = decide(&rulebook, "Hoe vraag ik een paspoort aan?");
    assert_fail_safe(&d, "escalation.rhai:2");
    assert_fail_safe(&d, "ran too long");
}

#[test]
fn scripts_cannot_build_huge_strings_recurse_without_end_or_use_eval() {
    let huge = with_escalation_script("let s = \"x\";\nloop { s += s; }\nlog_only(\"\")");
    assert_fail_safe(&decide(&huge, "hallo"), "escalation.rhai:2");
    assert_fail_safe(&decide(&huge, "hallo"), "too large");

    let deep = with_escalation_script("fn down(n) { down(n + 1) }\ndown(0)");
    assert_fail_safe(&decide(&deep, "hallo"), "calls functions too deeply");

    let mut source = RulebookSource::embedded();
    source.escalation.text = "let x = 1;\neval(\"answer(\\\"passport\\\", \\\"x\\\")\")".to_owned();
    let errors = Rulebook::compile(source)
        .err()
        .expect("eval is refused")
        .to_string();
    assert!(errors.contains("scripts/escalation.rhai:2:"), "{errors}");
}

#[test]
fn scripts_cannot_import_files() {
    let mut source = RulebookSource::embedded();
    source.escalation.text = "import \"/etc/passwd\" as p;\nlog_only(\"x\")".to_owned();
    let errors = Rulebook::compile(source)
        .err()
        .expect("import is refused")
        .to_string();
    assert!(errors.contains("scripts/escalation.rhai:1:1"), "{errors}");
}

#[test]
fn a_script_error_or_impossible_verdict_never_sends_an_answer() {
    // A wrong argument count is refused at load now (see `script::names`); a wrong argument
    // type is still only found when the script runs.
    let wrong_type = with_escalation_script("answer(msg.template, 42)");
    assert_fail_safe(&decide(&wrong_type, "paspoort"), "escalation.rhai:1");

    // Names computed at run time cannot be checked at load; they are checked per decision.
    let unknown_team = with_escalation_script(
        "let t = \"leg\" + \"all\";\nescalate(t, \"high\", \"typo in team\")",
    );
    assert_fail_safe(
        &decide(&unknown_team, "paspoort"),
        "escalation.rhai:2: escalate names team `legall`",
    );

    let unknown_template =
        with_escalation_script("answer(msg.template + \"s\", \"typo in template\")");
    assert_fail_safe(
        &decide(&unknown_template, "paspoort"),
        "template `passports`",
    );

    let bad_priority = with_escalation_script("let p = \"asap\";\nescalate(\"webcare\", p, \"x\")");
    assert_fail_safe(
        &decide(&bad_priority, "paspoort"),
        "unknown priority `asap`",
    );

    let not_a_decision = with_escalation_script("42");
    assert_fail_safe(&decide(&not_a_decision, "paspoort"), "must end with answer");

    // A map may have any key, so `m.nonsense` passes the load; `len` of `()` fails when run.
    let broken_review = with_governance_script("let m = #{};\nlet x = m.nonsense.len();\ndecision");
    assert_fail_safe(&decide(&broken_review, "paspoort"), "governance.rhai:2");
    // On line 1 too the column is the one in the script as written (the engine compiles the
    // scripts behind a line of its own; see `script::declared`).
    let first_line = with_governance_script("let m = #{}; let x = m.nonsense.len();\ndecision");
    assert_fail_safe(&decide(&first_line, "paspoort"), "governance.rhai:1:33: ");
}

#[test]
fn misspelt_names_in_scripts_are_refused_at_load_with_their_position() {
    let mut source = RulebookSource::embedded();
    source.escalation.text = "if msg.has_topic(\"pasport\") {\n  return answer(\"pasport\", \"x\");\n}\nif msg.category == \"crisiss\" { return escalate(\"crisis\", \"urgentt\", \"x\"); }\nescalate(\"legall\", \"high\", \"x\")".to_owned();
    source.governance.text = "// answer(\"commented out\", \"fine\")\nlet d = decision;\nd.template = \"holding_crisiss\";\nd".to_owned();
    let errors = Rulebook::compile(source)
        .err()
        .expect("refused")
        .to_string();
    for expected in [
        "scripts/escalation.rhai:1:19: topic `pasport` is not defined",
        "scripts/escalation.rhai:2:18: template `pasport` is not defined",
        "scripts/escalation.rhai:4:21: unknown category `crisiss`",
        "scripts/escalation.rhai:4:59: unknown priority `urgentt`",
        "scripts/escalation.rhai:5:11: team `legall` is not defined",
        "scripts/governance.rhai:3:15: template `holding_crisiss` is not defined",
    ] {
        assert!(
            errors.contains(expected),
            "missing `{expected}` in:\n{errors}"
        );
    }
    assert!(!errors.contains("commented out"), "{errors}");
}

#[test]
fn a_script_syntax_error_does_not_hide_the_other_mistakes() {
    let mut source = RulebookSource::embedded();
    source.governance.text = "let x = ;".to_owned();
    source
        .topics
        .text
        .push_str("\n[[topic]]\nid = \"x\"\ncategory = \"questoin\"\nkeywords = [\"x\"]\n");
    let errors = Rulebook::compile(source)
        .err()
        .expect("refused")
        .to_string();
    assert!(errors.contains("governance.rhai:1:"), "{errors}");
    assert!(errors.contains("unknown category `questoin`"), "{errors}");
}

#[test]
fn governance_that_changes_the_template_changes_the_reply_and_names_its_line() {
    let rulebook = with_governance_script(
        "if decision.action == \"answer\" {\n  decision.template = \"opening_hours\";\n}\ndecision",
    );
    let d = decide(&rulebook, "Hoe vraag ik een paspoort aan?");
    let expected = rulebook
        .templates()
        .text("opening_hours", webcare_engine::decision::Language::Nl)
        .expect("template exists");
    assert_eq!(d.action.reply(), Some(expected));
    assert!(
        d.diagnostics.rules.iter().any(|r| r == "governance.rhai:2"),
        "{:?}",
        d.diagnostics.rules
    );
    assert!(
        d.diagnostics
            .reasons
            .iter()
            .any(|r| r == "governance adjusted the template")
    );
}

#[test]
fn governance_has_the_last_word_and_its_reason_is_recorded() {
    let rulebook = with_governance_script(
        "if decision.action == \"answer\" { return log_only(\"pilot: listen only\"); }\ndecision",
    );
    let d = decide(&rulebook, "Hoe vraag ik een paspoort aan?");
    assert_eq!(d.action, Action::Log);
    assert!(d.diagnostics.rules.iter().any(|r| r == "governance.rhai:1"));
    assert!(
        d.diagnostics
            .reasons
            .iter()
            .any(|r| r == "governance: pilot: listen only")
    );
}

#[test]
fn the_bot_never_answers_in_a_conversation_a_human_owns_whatever_the_scripts_say() {
    let rulebook = with_governance_script("decision");
    let context = DecideContext {
        conversation: ConversationFacts {
            state: ConversationState::Human,
            ..ConversationFacts::default()
        },
        crisis_mode: None,
    };
    let naive = with_escalation_script("answer(\"passport\", \"always answer\")");
    let escalating =
        with_escalation_script("escalate(\"webcare\", \"normal\", \"always escalate\")");
    for rulebook in [&rulebook, &naive, &escalating] {
        let d = rulebook.decide(&message("Hoe vraag ik een paspoort aan?"), &context);
        assert!(!matches!(d.action, Action::Answer { .. }), "{:?}", d.action);
        assert!(
            d.action.reply().is_none(),
            "nothing is sent: {:?}",
            d.action
        );
    }
    for rulebook in [&naive, &escalating] {
        let d = rulebook.decide(&message("paspoort"), &context);
        assert!(
            d.diagnostics
                .rules
                .iter()
                .any(|r| r == "engine:human-owns-conversation")
        );
    }
    let d = escalating.decide(&message("paspoort"), &context);
    assert_eq!(
        d.action.team(),
        Some("webcare"),
        "the escalation still reaches the agent"
    );
}

#[test]
fn crisis_mode_sends_everything_to_a_person() {
    let rulebook = default_rulebook();
    let context = DecideContext {
        crisis_mode: Some(true),
        ..DecideContext::default()
    };
    let d = rulebook.decide(&message("Hoe vraag ik een paspoort aan?"), &context);
    assert_eq!(d.action.name(), "escalate");
}

#[test]
fn hostile_and_odd_input_always_gets_a_decision_and_never_a_blind_answer() {
    let rulebook = default_rulebook();
    let megabyte = "paspoort ".repeat(120_000);
    let inputs = [
        String::new(),
        " \t\n ".to_owned(),
        "\u{0}\u{1}\u{7}\u{1b}[31m".to_owned(),
        "👍🏽🔥🔥🔥".to_owned(),
        "مرحبا، أين أجد البلدية؟".to_owned(),
        "שלום, מתי פתוח?".to_owned(),
        megabyte,
        "a".repeat(1_000_000),
    ];
    for text in &inputs {
        let d = decide(&rulebook, text);
        assert!(d.diagnostics.script_errors.is_empty() || d.action.name() == "escalate");
        if text.trim().is_empty() || text.starts_with('\u{0}') || text.starts_with('a') {
            assert_ne!(
                d.action.name(),
                "answer",
                "nothing recognisable, nothing automatic"
            );
        }
    }
}

#[test]
fn the_version_is_a_content_hash_of_what_decides() {
    let base = RulebookSource::embedded();
    let mut changed = base.clone();
    changed.topics.text = changed.topics.text.replacen("paspoort*", "paspoorten", 1);
    let mut tests_only = base.clone();
    tests_only.tests = None;
    assert_ne!(base.version(), changed.version());
    assert_eq!(base.version(), tests_only.version());
    assert_eq!(base.version().len(), 12);
}

#[test]
fn rulebook_mistakes_point_at_file_line_and_column() {
    type BreakIt = fn(&mut RulebookSource);
    let cases: [(&str, BreakIt, &str); 6] = [
        (
            "toml syntax",
            |s| s.topics.text.push_str("\n[[topic]\nid = \"x\"\n"),
            "rules/topics.toml:",
        ),
        (
            "unknown field",
            |s| {
                s.topics.text.push_str("\n[[topic]]\nid = \"x\"\ncategory = \"question\"\nkeywords = [\"x\"]\nkeyword = [\"y\"]\n")
            },
            "unknown field `keyword`",
        ),
        (
            "unknown category",
            |s| {
                s.topics.text.push_str(
                    "\n[[topic]]\nid = \"x\"\ncategory = \"questoin\"\nkeywords = [\"x\"]\n",
                )
            },
            "unknown category `questoin`",
        ),
        (
            "unknown template",
            |s| {
                s.topics.text.push_str("\n[[topic]]\nid = \"x\"\ncategory = \"question\"\nkeywords = [\"x\"]\ntemplate = \"nope\"\n")
            },
            "template `nope`",
        ),
        (
            "script syntax",
            |s| s.governance.text = "let x = ;\ndecision".to_owned(),
            "scripts/governance.rhai:1:9",
        ),
        (
            "bad regex",
            |s| {
                s.topics.text.push_str("\n[[topic]]\nid = \"x\"\ncategory = \"question\"\npatterns = [\"(unclosed\"]\n")
            },
            "not a valid regular expression",
        ),
    ];
    for (what, break_it, expected) in cases {
        let mut source = RulebookSource::embedded();
        break_it(&mut source);
        let errors = Rulebook::compile(source)
            .err()
            .unwrap_or_else(|| panic!("{what}: a broken rulebook must be refused"))
            .to_string();
        assert!(errors.contains(expected), "{what}: {errors}");
        let first = errors.lines().next().unwrap_or("");
        let mut parts = first.splitn(4, ':');
        let (file, line, column) = (parts.next(), parts.next(), parts.next());
        assert!(
            file.is_some_and(|f| f.ends_with(".toml") || f.ends_with(".rhai")),
            "{what}: {first}"
        );
        assert!(
            line.is_some_and(|l| l.parse::<usize>().is_ok()),
            "{what}: {first}"
        );
        assert!(
            column.is_some_and(|c| c.parse::<usize>().is_ok()),
            "{what}: {first}"
        );
    }
}

#[test]
fn malformed_examples_are_refused_with_their_file_and_line() {
    let mut source = RulebookSource::embedded();
    source.examples[1].text.push_str(
        "{\"text\": \"hoi\", \"category\": \"weather\"}\n{\"text\": \"x\" \"category\": \"spam\"}\n",
    );
    let lines = source.examples[1].text.lines().count();
    let errors = Rulebook::compile(source)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        errors.contains(&format!(
            "rules/examples/en.jsonl:{}:1: unknown category `weather`",
            lines - 1
        )),
        "{errors}"
    );
    assert!(
        errors.contains(&format!("rules/examples/en.jsonl:{lines}:")),
        "{errors}"
    );
}

#[test]
fn examples_that_cannot_train_a_classifier_are_refused() {
    let mut source = RulebookSource::embedded();
    for file in &mut source.examples {
        file.text.clear();
    }
    let errors = Rulebook::compile(source)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        errors.contains("rules/examples/nl.jsonl:1:1: the classifier cannot learn from these examples: no labelled examples"),
        "{errors}"
    );

    let mut source = RulebookSource::embedded();
    for file in &mut source.examples {
        file.text = "{\"text\": \"dank je\", \"category\": \"compliment\"}\n".to_owned();
    }
    let errors = Rulebook::compile(source)
        .err()
        .expect("refused")
        .to_string();
    assert!(errors.contains("at least two categories"), "{errors}");
}

#[test]
fn malformed_keywords_of_the_new_syntax_point_at_their_place() {
    let mut source = RulebookSource::embedded();
    source.topics.text.push_str(
        "\n[[topic]]\nid = \"dike\"\ncategory = \"crisis\"\nkeywords = [\"rivier NEAR/50 dijk\", \"=pas*\"]\nstems = true\n",
    );
    let line = source.topics.text.lines().count() - 1;
    let errors = Rulebook::compile(source)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        errors.contains(&format!("rules/topics.toml:{line}:13: keyword `rivier NEAR/50 dijk`: the distance in `NEAR/50` must be a number from 1 to 20")),
        "{errors}"
    );
    assert!(
        errors.contains("keyword `=pas*` is both exact (`=`) and a prefix (`*`)"),
        "{errors}"
    );
}

/// The keywords of `topic` that matched `text`, as the reasons name them.
fn matched_by(rulebook: &Rulebook, topic: &str, text: &str) -> Vec<String> {
    decide(rulebook, text)
        .diagnostics
        .topics
        .into_iter()
        .filter(|t| t.topic == topic)
        .flat_map(|t| t.matched)
        .collect()
}

/// The default rulebook with more `[groups]` in its lexicon and one topic that uses them.
fn with_groups(groups: &str, keywords: &str) -> RulebookSource {
    let mut source = RulebookSource::embedded();
    let lexicon = &mut source.lexicon.text;
    assert!(
        lexicon.contains("\n[groups]\n"),
        "the default lexicon has groups"
    );
    *lexicon = lexicon.replace("\n[groups]\n", &format!("\n[groups]\n{groups}\n"));
    source.topics.text.push_str(&format!(
        "\n[[topic]]\nid = \"loose_overhead\"\ncategory = \"report\"\nkeywords = [{keywords}]\n"
    ));
    source
}

#[test]
fn word_groups_count_alone_and_on_either_side_of_near() {
    let source = with_groups(
        "coming_down = [\"afgebroken\", \"loshangend\", \"losgeschoten\"]\npeople = [\"kinderen\", \"fietsers\"]\nwarnings = [\"pas op\", \"=gevaarlijk\"]",
        "\"@coming_down NEAR/6 @people\", \"@warnings\"",
    );
    let rulebook = Rulebook::compile(source).unwrap_or_else(|e| panic!("compiles:\n{e}"));
    let matched = |text: &str| matched_by(&rulebook, "loose_overhead", text);
    // Each pair of the two groups is a keyword of its own, and the reason names the pair.
    assert_eq!(
        matched("er is een tak afgebroken en de kinderen lopen eronder"),
        ["afgebroken NEAR/6 kinderen"]
    );
    assert_eq!(
        matched("fietsers rijden langs een paal die losgeschoten is"),
        ["losgeschoten NEAR/6 fietsers"]
    );
    // A group alone is a keyword per term, phrases and `=` words included.
    assert_eq!(matched("pas op bij de brug"), ["pas op"]);
    assert_eq!(matched("dit is gevaarlijk"), ["=gevaarlijk"]);
    // Apart, or without people, the pair does not count.
    assert!(matched("de tak is afgebroken").is_empty());
    assert!(
        matched("de tak is gisteren al afgebroken door de storm, het is een week later en nu spelen er weer kinderen")
            .is_empty()
    );
}

#[test]
fn word_group_mistakes_point_at_their_place() {
    let source = with_groups(
        "people = [\"kinderen\"]\nphrases = [\"hangt los\"]\nempty = []\nnested = [\"tak NEAR/3 kinderen\", \"@people\"]\nBad-Name = [\"x\"]",
        "\"@unknown NEAR/5 @people\", \"tak @people\", \"@phrases NEAR/4 @people\"",
    );
    let topics_line = source.topics.text.lines().count();
    let errors = Rulebook::compile(source)
        .err()
        .expect("refused")
        .to_string();
    for expected in [
        format!(
            "rules/topics.toml:{topics_line}:13: keyword `@unknown NEAR/5 @people` uses group `@unknown`, which lexicon.toml does not define (known: "
        ),
        format!(
            "rules/topics.toml:{topics_line}:40: keyword `tak @people`: a group is written `@name`, alone or as one side of NEAR"
        ),
        // A phrase may be in a group, but not beside NEAR: the error names the pair and points
        // at the keyword that made it.
        format!(
            "rules/topics.toml:{topics_line}:55: keyword `hangt los NEAR/4 kinderen`: each side of NEAR is one word"
        ),
        "group `empty` is empty, so a keyword using it could never match".to_owned(),
        "group `nested`: `tak NEAR/3 kinderen` is a NEAR".to_owned(),
        "group `nested`: `@people` names a group".to_owned(),
        "group `Bad-Name`: a name is lowercase letters, digits and `_` only".to_owned(),
    ] {
        assert!(errors.contains(&expected), "{expected}\nnot in:\n{errors}");
    }
    assert!(errors.contains("rules/lexicon.toml:"), "{errors}");
}

/// The embedded rulebook with `[shorthand]` replaced by `shorthand` and one more topic.
fn with_shorthand(shorthand: &str, keywords: &str) -> RulebookSource {
    let mut source = RulebookSource::embedded();
    let lexicon = &mut source.lexicon.text;
    let at = lexicon
        .find("\n[shorthand]\n")
        .expect("the default lexicon has shorthand");
    lexicon.truncate(at);
    lexicon.push_str(&format!("\n[shorthand]\n{shorthand}\n"));
    source.topics.text.push_str(&format!(
        "\n[[topic]]\nid = \"threat_test\"\ncategory = \"abuse\"\nkeywords = [{keywords}]\n"
    ));
    source
}

#[test]
fn keyword_phrases_match_as_typed_in_a_chat_and_shorthand_mistakes_point_at_their_place() {
    let source = with_shorthand(
        "\"your\" = [\"ur\"]\n\"I'm\" = [\"im\"]",
        "\"i m coming to your office\", \"your\"",
    );
    let rulebook = Rulebook::compile(source).unwrap_or_else(|e| panic!("compiles:\n{e}"));
    let matched = |text: &str| matched_by(&rulebook, "threat_test", text);
    // Both shorthands in one phrase, and the reason names the spelling that matched.
    assert_eq!(
        matched("IM COMING TO UR OFFICE"),
        ["im coming to ur office"]
    );
    assert_eq!(
        matched("I'm coming to your office"),
        ["i m coming to your office", "your"]
    );
    // A single word is not spelled out: "ur" alone is not "your".
    assert!(matched("ur").is_empty());

    let broken = with_shorthand("\"you\" = [\"You\", \"u*\"]\n\"mijn\" = []", "\"x y\"");
    let errors = Rulebook::compile(broken)
        .err()
        .expect("refused")
        .to_string();
    for expected in [
        "shorthand `you`: `You` is the word itself",
        "shorthand `you`: `u*` is a keyword's syntax",
        "shorthand `mijn` lists no spellings",
    ] {
        assert!(errors.contains(expected), "{expected}\nnot in:\n{errors}");
    }
    assert!(errors.contains("rules/lexicon.toml:"), "{errors}");
}

#[test]
fn a_script_may_file_a_decision_under_a_category_but_only_a_real_one() {
    let rulebook = with_escalation_script(
        "let d = escalate(\"communications\", \"high\", \"heard the press\");\nd.category = \"press\";\nd",
    );
    let d = decide(&rulebook, "Wat kost een paspoort?");
    assert_eq!(d.diagnostics.category, Category::Press);
    assert_eq!(d.action.team(), Some("communications"));

    let broken = with_escalation_script(
        "let d = escalate(\"communications\", \"high\", \"x\");\nd.category = \"prees\";\nd",
    );
    assert_fail_safe(
        &decide(&broken, "Wat kost een paspoort?"),
        "unknown category `prees`",
    );
}

#[test]
fn the_classifier_and_the_language_are_in_every_decision_s_why() {
    let rulebook = default_rulebook();
    let d = decide(
        &rulebook,
        "Guten Tag, wann wird bei uns in der Lindenstraße der Sperrmüll abgeholt?",
    );
    let why = d.diagnostics.reasons.join(" | ");
    assert!(why.contains("written in German (de)"), "{why}");
    assert!(why.contains("classifier: "), "{why}");
    let reply = d.action.reply().unwrap_or_default();
    assert!(
        reply.contains("Bedankt voor uw bericht") && reply.contains("Thank you for your message"),
        "Dutch and English: {reply}"
    );
}

#[test]
fn categories_in_gives_the_matched_categories_of_a_list_in_the_lists_order() {
    // The reason names what the script saw, so the test reads it back.
    let rulebook = with_escalation_script(
        "let found = msg.categories_in([\"press\", \"crisis\", \"legal\"]);\nlog_only(\"found \" + found)",
    );
    let both = decide(
        &rulebook,
        "Er is brand in de school, wij zijn journalist van de krant",
    );
    assert!(
        both.diagnostics
            .reasons
            .iter()
            .any(|r| r == "found [\"press\", \"crisis\"]"),
        "{:?}",
        both.diagnostics.reasons
    );
    let none = decide(&rulebook, "Wat zijn de openingstijden?");
    assert!(
        none.diagnostics.reasons.iter().any(|r| r == "found []"),
        "{:?}",
        none.diagnostics.reasons
    );
}

#[test]
fn script_limits_that_would_mean_no_limit_or_a_stack_overflow_are_refused_with_their_line() {
    for (setting, says) in [
        ("max_operations = 100000", "max_operations = 0"),
        ("max_string_size = 65536", "max_string_size = 0"),
        ("max_call_depth = 32", "max_call_depth = 100000"),
    ] {
        let mut source = RulebookSource::embedded();
        let line = source
            .rulebook
            .text
            .lines()
            .position(|l| l == setting)
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("the default rulebook sets `{setting}`"));
        source.rulebook.text = source.rulebook.text.replace(setting, says);
        let errors = Rulebook::compile(source)
            .err()
            .unwrap_or_else(|| panic!("`{says}` must be refused"))
            .to_string();
        assert!(
            errors.contains(&format!("rules/rulebook.toml:{line}:"))
                && errors.contains("must be between"),
            "{says}: {errors}"
        );
    }
}

/// The deepest script the `[script_limits]` ranges allow: a function 63 calls deep, each call
/// nested in 55 others. On a runtime's default 2 MiB thread it aborts the process.
fn deepest_allowed_rulebook() -> Rulebook {
    let mut source = RulebookSource::embedded();
    let body = format!("{}f(n - 1){}", "abs(".repeat(55), ")".repeat(55));
    source.escalation.text =
        format!("fn f(n) {{ if n <= 0 {{ 0 }} else {{ {body} }} }}\nlog_only(\"depth \" + f(62))");
    source.rulebook.text = source
        .rulebook
        .text
        .replace("max_call_depth = 32", "max_call_depth = 64")
        .replace("max_expression_depth = 64", "max_expression_depth = 128");
    Rulebook::compile(source).unwrap_or_else(|e| panic!("the limits allow it:\n{e}"))
}

#[test]
fn the_deepest_script_the_limits_allow_decides_on_a_deciding_thread() {
    let rulebook = deepest_allowed_rulebook();
    let reasons = std::thread::Builder::new()
        .stack_size(webcare_engine::script::DECIDE_STACK_BYTES)
        .spawn(move || decide(&rulebook, "hallo").diagnostics.reasons)
        .unwrap()
        .join()
        .unwrap();
    assert!(reasons.iter().any(|r| r == "depth 0"), "{reasons:?}");
}

/// A host function is one operation to Rhai however much text it reads; its work counts
/// against the operation limit, so a loop of them on a long text stops like an endless loop.
#[test]
fn host_functions_count_their_work_against_the_operation_limit() {
    let rulebook = with_escalation_script(
        "for i in 0..20000 { if contains_any(msg.text, [\"zzz\", \"yyy\"]) { break; } }\nlog_only(\"done\")",
    );
    let decision = decide(&rulebook, &"een lang bericht over van alles ".repeat(500));
    assert_fail_safe(&decision, "operation limit");
}

/// The team's canned replies are part of the rulebook: loaded, versioned and checked with it,
/// each mistake named with its file, line and column.
#[test]
fn canned_replies_are_checked_and_versioned_with_the_rulebook() {
    let rulebook = Rulebook::compile(RulebookSource::embedded()).unwrap();
    let replies = rulebook.replies();
    assert!(replies.all().len() >= 3);
    let press = replies.get("press_contact").expect("in rules/replies.toml");
    assert_eq!(press.teams, ["communications"]);
    assert_eq!(
        replies
            .for_team("legal")
            .filter(|r| r.id == "press_contact")
            .count(),
        0
    );
    // File order, not alphabetical: a lead puts the most used first.
    assert_eq!(replies.all()[0].id, "looking_into_it");

    let mut source = RulebookSource::embedded();
    let replies_file = source.replies.as_mut().unwrap();
    replies_file.text.push_str(
        "\n[broken]\ntitle_nl = \"Kapot\"\ntitle_en = \"\"\nnl = \"Hoi {naam}\"\nen = \"Hi\"\nteams = [\"nobody\"]\n",
    );
    let edited = replies_file.text.clone();
    let line = |needle: &str| edited.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let errors = Rulebook::compile(source)
        .err()
        .expect("the mistakes are refused")
        .to_string();
    for expected in [
        format!("rules/replies.toml:{}:", line("[broken]")),
        "has an empty `title_en`".to_owned(),
        "unknown placeholder `{naam}`".to_owned(),
        format!("rules/replies.toml:{}:", line("teams = [\"nobody\"]")),
        "team `nobody`, which teams.toml does not define".to_owned(),
    ] {
        assert!(
            errors.contains(&expected),
            "missing `{expected}` in:\n{errors}"
        );
    }

    // An unknown key is refused too, and a changed reply is a new rulebook version.
    let mut source = RulebookSource::embedded();
    source
        .replies
        .as_mut()
        .unwrap()
        .text
        .push_str("\n[x]\ntitle = \"t\"\n");
    let errors = Rulebook::compile(source)
        .err()
        .expect("unknown key")
        .to_string();
    assert!(errors.contains("rules/replies.toml:"), "{errors}");
    let mut source = RulebookSource::embedded();
    source
        .replies
        .as_mut()
        .unwrap()
        .text
        .push_str("\n# a comment\n");
    assert_ne!(source.version(), RulebookSource::embedded().version());
}
