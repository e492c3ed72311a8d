use std::path::PathBuf;

use crate::rulebook::config::ScriptLimitsConfig;
use crate::rulebook::source::SourceFile;
use crate::script::ScriptHost;

fn file(name: &str, text: &str) -> SourceFile {
    SourceFile {
        path: PathBuf::from(format!("scripts/{name}")),
        text: text.to_owned(),
    }
}

/// The errors `check` gives for an escalation script, one line each.
fn errors(escalation: &str) -> Vec<String> {
    errors_of(escalation, "decision")
}

fn errors_of(escalation: &str, governance: &str) -> Vec<String> {
    match ScriptHost::compile(
        &ScriptLimitsConfig::default(),
        &file("escalation.rhai", escalation),
        &file("governance.rhai", governance),
    ) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_misspelled_function_is_refused_with_its_place_and_the_name_meant() {
    let errors = errors("let x = 1;\nlogonly(\"compliment\")\n");
    assert_eq!(
        errors,
        ["scripts/escalation.rhai:2:1: unknown function `logonly`; did you mean `log_only`?"]
    );
}

#[test]
fn a_misspelled_property_is_refused_with_the_property_meant() {
    let errors =
        errors("if conversation.auto_replys > 3 { return log_only(\"x\"); }\nlog_only(\"y\")");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "scripts/escalation.rhai:1:17: a Conversation has no property `auto_replys`; did you mean `auto_replies`?"
        ),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("complaints_24h"),
        "lists what there is: {errors:?}"
    );
}

#[test]
fn properties_are_followed_through_chains_and_local_variables() {
    let errors = errors(
        "let g = msg.guess;\nlet h = g;\nif msg.critical_guess.scor > 0.5 || h.catgory == \"x\" || msg.features.url > 1 {\n  return log_only(\"x\");\n}\nlog_only(\"y\")",
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].contains(":3:23: a Guess has no property `scor`; did you mean `score`?"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains(":3:39: a Guess has no property `catgory`; did you mean `category`?"),
        "{errors:?}"
    );
    assert!(
        errors[2].contains(":3:70: a Features has no property `url`; did you mean `urls`?"),
        "{errors:?}"
    );
}

#[test]
fn a_property_set_must_exist_and_be_settable() {
    let errors = errors_of(
        "let d = escalate(default_team, \"high\", \"x\");\nd.categroy = \"press\";\nd",
        "decision.action = \"log\";\ndecision.reply = \"ok\";\ndecision",
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains(
            "escalation.rhai:2:3: a Decision has no property `categroy`; did you mean `category`?"
        ),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("governance.rhai:1:10: `action` of a Decision can be read but not set"),
        "{errors:?}"
    );
}

#[test]
fn methods_are_resolved_on_their_receiver() {
    let errors = errors(
        "if msg.guess.probabilty(\"press\") > 0.5 || msg.text() == \"\" || teams.is_opn(\"x\") {\n  return log_only(\"x\");\n}\nlog_only(\"y\")",
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0]
            .contains(":1:14: unknown method `probabilty` of a Guess; did you mean `probability`?"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains(":1:47: `text` is a property of a Message, not a method"),
        "{errors:?}"
    );
    assert!(
        errors[2].contains(":1:69: unknown method `is_opn` of a Teams; did you mean `is_open`?"),
        "{errors:?}"
    );
}

#[test]
fn a_call_with_the_wrong_number_of_arguments_says_how_many() {
    let errors = errors("escalate(default_team, \"only a reason\")");
    assert_eq!(
        errors,
        ["scripts/escalation.rhai:1:1: `escalate` takes 3 arguments, not 2"]
    );
    let errors = errors_of(
        "log_only(\"x\")",
        "if msg.has_topic() { return decision; }\ndecision",
    );
    assert!(
        errors[0].contains("governance.rhai:1:8: `has_topic` takes 1 argument, not 0"),
        "{errors:?}"
    );
}

#[test]
fn a_function_pointer_to_a_missing_function_is_refused() {
    let errors = errors("fn helper(x) { x }\nlet f = Fn(\"helpr\");\nlog_only(\"y\")");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(":2:9: `Fn(\"helpr\")` names no function; did you mean `helper`?"),
        "{errors:?}"
    );
}

#[test]
fn names_the_script_binds_and_the_standard_library_stay_accepted() {
    let script = r#"
        fn reason_for(topic) { "topic " + topic.to_upper() }
        fn anything(x) { x.whatever + x.len() }
        let add = |a, b| a + b;
        let shout = Fn("reason_for");
        let m = #{ count: 1, bump: |n| n + 1 };
        let total = add.call(1, 2) + add(3, 4) + m.count + m.bump(1);
        let words = msg.text.split(" ").filter(|w| w.len() > 3).map(|w| w.to_lower());
        let first = if words.len() > 0 { words[0] } else { "" };
        for (w, i) in words { total += i; }
        let reply = `${first} ${type_of(total)}`;
        if is_def_fn("reason_for", 1) && "abc".contains("b") && contains_any(msg.text, ["x"]) {
            let d = escalate(default_team, "normal", shout.call(msg.topic));
            d.template = "holding";
            d.category = msg.guess.category;
            return d;
        }
        try { throw "x"; } catch (e) { print(e); }
        if teams.is_open(msg.team) && msg.topic_guess.knows("afval") && msg.features.all_caps {
            return answer(msg.template, reason_for(msg.topic) + reply);
        }
        log_only(shorten(msg.text, 10))
    "#;
    assert_eq!(errors(script), Vec::<String>::new());
}

#[test]
fn a_property_of_a_type_without_properties_says_so() {
    let errors = errors("if teams.webcare { return log_only(\"x\"); }\nlog_only(\"y\")");
    assert_eq!(
        errors,
        [
            "scripts/escalation.rhai:1:10: `webcare` is not a property: a Teams has none (its methods: closed_today, exists, is_open, next_open)"
        ]
    );
}

#[test]
fn methods_of_the_script_switches_loops_and_optional_chains_stay_accepted() {
    let script = r#"
        fn is_long() { this.len() > 100 }
        fn shout(suffix) { this.to_upper() + suffix }
        let t = msg.text;
        let long = t.is_long() && t.shout("!") != "";
        let n = 0;
        for topic in msg.topics { n += topic.len(); }
        let kind = switch msg.category { "press" => 1, "legal" if n > 0 => 2, _ => 3 };
        let r = conversation?.auto_replies ?? 0;
        let c = msg.categories[0];
        let f = |x| x + n;
        let g = f.curry(1);
        if is_def_var("kind") && long && r > kind && g.call() > 0 && c != "" {
            return escalate(default_team, "normal", `${msg.topic} ${this_is_fine()}`);
        }
        fn this_is_fine() { "fine" }
        log_only("y")
    "#;
    assert_eq!(errors(script), Vec::<String>::new());
}

#[test]
fn the_default_scripts_pass() {
    let escalation = include_str!("../../../../scripts/escalation.rhai");
    let governance = include_str!("../../../../scripts/governance.rhai");
    assert_eq!(errors_of(escalation, governance), Vec::<String>::new());
}
