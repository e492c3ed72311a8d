//! The compiled scripts against Rhai: every compiled run in these tests is repeated on Rhai and
//! must give the same verdict, field by field (the differential check), and a script or run the
//! compiled path does not handle must come out exactly as Rhai has it.

use std::cell::Cell;

use chrono::{TimeZone, Utc};

use crate::script::{Script, ScriptHost, ScriptRun, Verdict};
use crate::{ChannelKind, DecideContext, Decision, Inbound, Rulebook, RulebookSource};

thread_local! {
    static DIFFERENTIAL: Cell<bool> = const { Cell::new(false) };
    /// Compiled runs that finished, and those left to Rhai, on this thread.
    static RUNS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Called after every compiled run that finished: with the differential check on, runs the
/// script again on Rhai and fails the test on any difference.
pub(in crate::script) fn differential(
    host: &ScriptHost,
    script: &Script,
    run: &ScriptRun<'_>,
    review: Option<(Verdict, i64)>,
    verdict: &Verdict,
) {
    RUNS.with(|r| r.set((r.get().0 + 1, r.get().1)));
    if DIFFERENTIAL.with(Cell::get) {
        let rhai = host.run_rhai(script, &mut ScriptRun::new(run.inputs), review);
        assert_eq!(
            rhai.as_ref(),
            Ok(verdict),
            "{} compiled decided differently from Rhai for {:?}",
            script.name,
            run.inputs.msg.0.text.as_str()
        );
    }
}

/// Called when a compiled run was left to Rhai.
pub(in crate::script) fn bailed() {
    RUNS.with(|r| r.set((r.get().0, r.get().1 + 1)));
}

/// Runs `f` with the differential check on; also returns the compiled runs that finished and
/// those left to Rhai.
fn checked<T>(f: impl FnOnce() -> T) -> (T, (usize, usize)) {
    DIFFERENTIAL.with(|d| d.set(true));
    RUNS.with(|r| r.set((0, 0)));
    let out = f();
    DIFFERENTIAL.with(|d| d.set(false));
    (out, RUNS.with(Cell::get))
}

fn rulebook(escalation: Option<&str>, limits: &[(&str, &str)]) -> Rulebook {
    let mut source = RulebookSource::embedded();
    if let Some(script) = escalation {
        source.escalation.text = script.to_owned();
        // The golden cases are about the default script.
        source.tests = None;
    }
    for (from, to) in limits {
        assert!(source.rulebook.text.contains(from), "{from}");
        source.rulebook.text = source.rulebook.text.replace(from, to);
    }
    Rulebook::compile(source).expect("the rulebook compiles")
}

fn rulebook_of(escalation: &str) -> Rulebook {
    rulebook(Some(escalation), &[])
}

fn interpreted(mut rulebook: Rulebook) -> Rulebook {
    for script in [
        &mut rulebook.scripts.escalation,
        &mut rulebook.scripts.governance,
    ] {
        script.compiled = Err("switched off".to_owned());
    }
    rulebook
}

fn message(i: usize, text: &str) -> Inbound {
    // A weekday morning and a Sunday night, so opening hours go both ways.
    let at = if i.is_multiple_of(2) {
        Utc.with_ymd_and_hms(2026, 3, 4, 9, 30, 0)
    } else {
        Utc.with_ymd_and_hms(2026, 3, 8, 22, 15, 0)
    };
    let channel = [
        ChannelKind::Webchat,
        ChannelKind::Telegram,
        ChannelKind::Email,
    ][i % 3];
    Inbound::from_text(format!("m{i}"), channel, text, at.unwrap())
}

fn contexts() -> Vec<DecideContext> {
    let crisis = DecideContext {
        crisis_mode: Some(true),
        ..DecideContext::default()
    };
    let mut human = DecideContext::default();
    human.conversation.state = crate::ConversationState::Human;
    let mut busy = DecideContext::default();
    busy.conversation.messages_today = 3;
    busy.conversation.auto_replies = 5;
    busy.conversation.complaints_24h = 2;
    busy.conversation.complaints_7d = 2;
    vec![DecideContext::default(), crisis, human, busy]
}

#[test]
fn compiled_scripts_decide_every_golden_case_and_example_as_rhai_does() {
    let rulebook = rulebook(None, &[]);
    assert_eq!(
        rulebook.scripts.interpreted(),
        [("escalation.rhai", None), ("governance.rhai", None)],
        "both default scripts compile"
    );
    let examples: Vec<String> = RulebookSource::embedded()
        .examples
        .iter()
        .flat_map(|file| file.text.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(&line).ok()?;
            Some(v.get("text")?.as_str()?.to_owned())
        })
        .collect();
    assert!(examples.len() > 5_000, "{} examples", examples.len());
    let contexts = contexts();
    let ((), (compiled, bailed)) = checked(|| {
        let outcomes = rulebook.run_golden();
        assert!(outcomes.len() > 100, "{} golden cases", outcomes.len());
        for (i, text) in examples.iter().enumerate() {
            // Every example as a first message; every seventh in the other situations too.
            let n = if i % 7 == 0 { contexts.len() } else { 1 };
            for ctx in &contexts[..n] {
                rulebook.decide(&message(i, text), ctx);
            }
        }
    });
    assert!(compiled > 2 * examples.len(), "{compiled} compiled runs");
    assert_eq!(bailed, 0, "no run of the default scripts is left to Rhai");
}

/// Decides `text` on `rulebook` with the differential check, and on Rhai alone: the decisions
/// must be equal. Returns it, with the compiled runs that finished and those left to Rhai.
fn decide_both(rulebook: &Rulebook, rhai: &Rulebook, text: &str) -> (Decision, (usize, usize)) {
    let (decision, runs) =
        checked(|| rulebook.decide(&message(0, text), &DecideContext::default()));
    let expected = rhai.decide(&message(0, text), &DecideContext::default());
    assert_eq!(decision, expected);
    (decision, runs)
}

const CONSTRUCTS: &str = r#"
fn larger(a, b) { if a > b { return a; } b }
let xs = [3, 1, 2];
let total = 0;
for x in xs { total += x; }
let best = larger(xs[0], xs[2]);
let half = 0.25 * 2;
let label = if total == 6 && !(best < 3) || false { "six" } else { "other" };
let share = (half * 100).to_int();
let g = msg.guess;
let words = msg.features.words;
let who = if conversation.human_owned { "person" } else { "bot" };
let known = ["a", "b"].contains("b") && !msg.has_topic("ask_human");
let open = teams.exists("legal") || teams.is_open("legal");
let d = escalate(default_team, "normal", label + " " + total + " " + half + " " + share + "% "
    + 2.0 + " " + -1.5 + " " + words + " " + who + " " + known + " " + g.category.len());
d.template = "holding_crisis";
if msg.text.len() > 1000 { return log_only("long"); }
d
"#;

#[test]
fn each_construct_of_the_compiled_subset_runs_compiled_and_as_rhai_does() {
    let compiled = rulebook(Some(CONSTRUCTS), &[]);
    assert_eq!(compiled.scripts.interpreted()[0].1, None);
    let rhai = interpreted(rulebook(Some(CONSTRUCTS), &[]));
    for text in ["Hoe laat is het stadhuis open?", "", "HELP!!! 🔥 brand"] {
        let (decision, (runs, bailed)) = decide_both(&compiled, &rhai, text);
        // Both scripts ran compiled; a `bool` added to a string (`known`) is left to Rhai.
        assert_eq!((runs, bailed), (1, 1), "{text:?}");
        let reasons = decision.diagnostics.reasons.join("\n");
        assert!(reasons.contains("six 6 0.5 50% 2.0 -1.5 "), "{reasons}");
    }
    let plain = CONSTRUCTS.replace("+ \" \" + known ", "");
    let compiled = rulebook(Some(&plain), &[]);
    let rhai = interpreted(rulebook(Some(&plain), &[]));
    let (decision, (runs, bailed)) = decide_both(&compiled, &rhai, "waar is de milieustraat");
    assert_eq!((runs, bailed), (2, 0));
    assert!(
        decision
            .diagnostics
            .rules
            .iter()
            .any(|r| r == "escalation.rhai:15"),
        "{:?}",
        decision.diagnostics.rules
    );
}

/// The shapes compiled apart from the value path: conditions (numbers of both kinds compared),
/// strings joined in one buffer.
const SHAPES: &str = r#"
let n = 2;
let x = 0.5;
let words = ["a", "b", "c"];
let w = "b";
let lent = words.contains(w) && !words.contains("z") && w == "b";
let mixed = n > 1.5 && x < 1 && 2 >= n && !(x == 1) && n != 3 && (x > 0.7 || n <= 2);
let joined = "n=" + n + ", x=" + x + ", " + w + "!" + (n + 1);
let early = 1 + 2 + "a" + "b";
let g = msg.guess;
let cat = g.category;
let read = g.says(cat, 0.0) && (cat == "" || g.probability(cat) >= 0.0);
let l = if lent { "lent" } else { "copied" };
let m = if mixed { "mixed" } else { "unmixed" };
let r = if read { "read" } else { "unread" };
escalate(default_team, "normal", joined + " " + early + " " + l + " " + m + " " + r)
"#;

#[test]
fn conditions_and_joined_strings_decide_as_rhai_does() {
    let compiled = rulebook(Some(SHAPES), &[]);
    assert_eq!(compiled.scripts.interpreted()[0].1, None);
    let rhai = interpreted(rulebook(Some(SHAPES), &[]));
    for text in ["Hoe laat is het stadhuis open?", "", "HELP!!! 🔥 brand"] {
        let (decision, runs) = decide_both(&compiled, &rhai, text);
        assert_eq!(runs, (2, 0), "{text:?}");
        let reasons = decision.diagnostics.reasons.join("\n");
        assert!(
            reasons.contains("n=2, x=0.5, b!3 3ab lent mixed read"),
            "{reasons}"
        );
    }

    // Over the size limit only at the last `+`, checked on the whole: left to Rhai, which fails it.
    let long = format!("let a = \"{}\";\nlog_only(a + a + a)", "x".repeat(400));
    let limit = [("max_string_size = 65536", "max_string_size = 1024")];
    let compiled = rulebook(Some(&long), &limit);
    assert_eq!(compiled.scripts.interpreted()[0].1, None);
    let rhai = interpreted(rulebook(Some(&long), &limit));
    let (decision, (_, bailed)) = decide_both(&compiled, &rhai, "hallo");
    assert_eq!(bailed, 1);
    let errors = decision.diagnostics.script_errors.join("\n");
    assert!(errors.contains("too large"), "{errors}");
}

#[test]
fn starts_with_any_reads_the_opening_words_compiled_and_as_rhai_does() {
    let script = r#"if starts_with_any(msg.text, ["is", "waar kan"]) { log_only("opens so") } else { log_only("opens otherwise") }"#;
    let compiled = rulebook(Some(script), &[]);
    assert_eq!(compiled.scripts.interpreted()[0].1, None);
    let rhai = interpreted(rulebook(Some(script), &[]));
    for (text, opens) in [
        ("Is the library open on Sunday", true),
        ("waar kan ik parkeren", true),
        ("Waar, kan ik...", true),
        ("island tour?", false),
        ("waar is het", false),
        ("the bin: is it full", false),
        ("", false),
    ] {
        let (decision, runs) = decide_both(&compiled, &rhai, text);
        assert_eq!(runs, (2, 0), "{text:?}");
        let reasons = decision.diagnostics.reasons.join("\n");
        assert_eq!(reasons.contains("opens so"), opens, "{text:?}: {reasons}");
    }
}

#[test]
fn contains_any_finds_whole_words_however_the_script_writes_them_compiled_and_as_rhai_does() {
    // Words not written in normal form (capitals, accents, Cyrillic with a breve) are
    // normalised as the text is; a word inside another word does not count.
    let script = r#"if contains_any(msg.text, ["Vaarwel", "прощайте", "lange reis", "adiós"]) { log_only("a farewell word") } else { log_only("none") }"#;
    let compiled = rulebook(Some(script), &[]);
    assert_eq!(compiled.scripts.interpreted()[0].1, None);
    let rhai = interpreted(rulebook(Some(script), &[]));
    for (text, found) in [
        ("Bedankt voor alles. VAARWEL.", true),
        ("Прощайте все", true),
        ("Ik ga een lange  reis maken", true),
        ("adios amigos", true),
        ("vaarwelkom", false),
        // The first occurrence is inside a word, the second is a word: the search goes on.
        ("eerst vaarwelkom, dan vaarwel", true),
        ("een reis, lange tijd", false),
        ("", false),
    ] {
        for _ in 0..2 {
            // Twice: the compiled script searches the list it made when it compiled, Rhai
            // finds it in the thread's cache the second time.
            let (decision, runs) = decide_both(&compiled, &rhai, text);
            assert_eq!(runs, (2, 0), "{text:?}");
            let reasons = decision.diagnostics.reasons.join("\n");
            assert_eq!(
                reasons.contains("a farewell word"),
                found,
                "{text:?}: {reasons}"
            );
        }
    }
}

#[test]
fn a_written_out_list_read_against_a_long_text_reaches_the_operation_limit_as_on_rhai() {
    // `contains_any` counts its reading against the limit, one operation per 64 bytes of text
    // per word: 12,000 characters against ten words is about 1,900 operations.
    let script = r#"if contains_any(msg.text, ["een", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen", "tien"]) { log_only("a number") } else { log_only("none") }"#;
    let limit = [("max_operations = 100000", "max_operations = 1000")];
    let compiled = rulebook(Some(script), &limit);
    assert_eq!(compiled.scripts.interpreted()[0].1, None);
    let rhai = interpreted(rulebook(Some(script), &limit));
    let (decision, (_, bailed)) = decide_both(&compiled, &rhai, &"x ".repeat(6_000));
    assert_eq!(bailed, 1);
    let errors = decision.diagnostics.script_errors.join("\n");
    assert!(errors.contains("operation limit reached"), "{errors}");
    // A short text is read within the limit, compiled.
    let (decision, (_, bailed)) = decide_both(&compiled, &rhai, "een, twee, drie");
    assert_eq!(bailed, 0);
    assert!(
        decision
            .diagnostics
            .reasons
            .iter()
            .any(|r| r.contains("a number"))
    );
}

#[test]
fn an_argument_that_assigns_the_value_a_method_reads_runs_on_rhai() {
    // Rhai computes the argument first: `words` is `["z"]` when `contains` reads it.
    for script in [
        "let words = [\"a\"];\nlet hit = words.contains({ words = [\"z\"]; \"z\" });\nlog_only(if hit { \"yes\" } else { \"no\" })",
        "let xs = [\"a\", \"b\"];\nlog_only(xs[{ xs = [\"c\", \"d\"]; 1 }])",
    ] {
        let compiled = rulebook(Some(script), &[]);
        let why = compiled.scripts.interpreted()[0].1.map(str::to_owned);
        assert!(
            why.as_deref()
                .is_some_and(|w| w.contains("may assign a variable")),
            "{script}: {why:?}"
        );
        let rhai = interpreted(rulebook(Some(script), &[]));
        let (decision, runs) = decide_both(&compiled, &rhai, "hallo");
        assert_eq!(runs, (1, 0), "{script}");
        let reasons = decision.diagnostics.reasons.join("\n");
        assert!(
            reasons.contains("yes") || reasons.contains('d'),
            "{reasons}"
        );
    }
}

#[test]
fn a_script_with_a_construct_outside_the_subset_runs_on_rhai() {
    let script =
        "let n = 0; while n < 3 { n += 1; } escalate(default_team, \"normal\", \"counted \" + n)";
    let rulebook = rulebook(Some(script), &[]);
    let why = rulebook.scripts.interpreted()[0].1.map(str::to_owned);
    assert!(
        why.as_deref().is_some_and(|w| w.contains("`while`")),
        "{why:?}"
    );
    let (decision, (runs, bailed)) =
        checked(|| rulebook.decide(&message(0, "hallo"), &DecideContext::default()));
    // Only governance ran compiled.
    assert_eq!((runs, bailed), (1, 0));
    assert!(
        decision
            .diagnostics
            .reasons
            .iter()
            .any(|r| r == "counted 3")
    );

    for (script, why) in [
        (
            "fn down(n) { if n > 0 { down(n - 1) } else { n } }\nlog_only(\"at \" + down(3))",
            "calls itself",
        ),
        (
            "fn split(a) { a }\nlog_only(split(\"x\"))",
            "named like an engine function (`split`)",
        ),
        ("let m = #{ a: 1 };\nlog_only(\"map\")", "map"),
        (
            "switch 1 { 1 => log_only(\"one\"), _ => log_only(\"other\") }",
            "`switch`",
        ),
    ] {
        let other = rulebook_of(script);
        let reason = other.scripts.interpreted()[0].1.map(str::to_owned);
        assert!(
            reason.as_deref().is_some_and(|r| r.contains(why)),
            "{script}: {reason:?}"
        );
        let (decision, (runs, bailed)) =
            checked(|| other.decide(&message(0, "hallo"), &DecideContext::default()));
        assert_eq!((runs, bailed), (1, 0), "{script}");
        assert!(decision.diagnostics.script_errors.is_empty(), "{script}");
    }
}

#[test]
fn a_script_that_reaches_a_limit_or_an_error_fails_as_it_does_on_rhai() {
    // 8,000 passes, far past 1,000 operations: counted as the loops run.
    let loops = "let xs = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20];\nlet n = 0;\n\
        for a in xs { for b in xs { for c in xs { n += 1; } } }\nescalate(default_team, \"normal\", \"\" + n)";
    let limit = [("max_operations = 100000", "max_operations = 1000")];
    let compiled = rulebook(Some(loops), &limit);
    assert_eq!(compiled.scripts.interpreted()[0].1, None);
    let rhai = interpreted(rulebook(Some(loops), &limit));
    let (decision, (_, bailed)) = decide_both(&compiled, &rhai, "hallo");
    assert_eq!(bailed, 1);
    let errors = decision.diagnostics.script_errors.join("\n");
    assert!(errors.contains("escalation.rhai:3:"), "{errors}");
    assert!(errors.contains("operation limit reached"), "{errors}");

    // The default script is longer than 100 operations could be: it is not compiled at all.
    let small = rulebook(None, &[("max_operations = 100000", "max_operations = 100")]);
    let why = small.scripts.interpreted()[0].1.map(str::to_owned);
    assert!(
        why.as_deref()
            .is_some_and(|w| w.contains("max_operations 100")),
        "{why:?}"
    );

    // An error where the compiled path stops: an index out of range, reported by Rhai.
    let index = "let xs = [1, 2];\nlet d = log_only(\"x\" + xs[5]);\nd";
    let compiled = rulebook(Some(index), &[]);
    let rhai = interpreted(rulebook(Some(index), &[]));
    let (decision, (_, bailed)) = decide_both(&compiled, &rhai, "hallo");
    assert_eq!(bailed, 1);
    let errors = decision.diagnostics.script_errors.join("\n");
    assert!(errors.contains("escalation.rhai:2:"), "{errors}");
}
