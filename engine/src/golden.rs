//! Golden cases: the rulebook's own unit tests, written as data in `tests.toml` by the
//! governance lead. Each case is a message (with optional time, channel, conversation facts
//! and crisis switch) and the decision it must get. `webcare test` and the crate's tests run
//! them all through the real pipeline.
//!
//! The cases are read and checked with the rest of the rulebook (`rulebook/golden_cases.rs`);
//! running them needs the pipeline, so that half lives here, above both: the rulebook never
//! imports what decides with it.

use std::collections::BTreeSet;

use crate::decision::{Decision, Priority};
use crate::rulebook::Rulebook;
use crate::rulebook::golden_cases::{Expect, GoldenCase};

/// One case's run: the decision and every expectation it missed.
#[derive(Debug)]
pub struct CaseOutcome<'a> {
    pub case: &'a GoldenCase,
    pub decision: Decision,
    pub failures: Vec<String>,
}

impl CaseOutcome<'_> {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Every expectation of `expect` that `decision` misses, as "what: expected …, got …".
pub fn compare(expect: &Expect, decision: &Decision) -> Vec<String> {
    let mut failures = Vec::new();
    let mut differ = |what: &str, expected: &str, actual: &str| {
        if expected != actual {
            failures.push(format!("{what}: expected `{expected}`, got `{actual}`"));
        }
    };
    let action = decision.action.name();
    differ("action", &expect.action, action);
    if let Some(category) = expect.category {
        differ(
            "category",
            category.as_str(),
            decision.diagnostics.category.as_str(),
        );
    }
    if let Some(team) = &expect.team {
        differ("team", team, decision.action.team().unwrap_or("(none)"));
    }
    if let Some(priority) = expect.priority {
        differ(
            "priority",
            priority.as_str(),
            decision
                .action
                .priority()
                .map_or("(none)", Priority::as_str),
        );
    }
    if let Some(topic) = &expect.topic {
        differ("topic", topic, decision.topic_ids().next().unwrap_or(""));
    }
    if let Some(template) = &expect.template {
        let actual = match &decision.action {
            crate::decision::Action::Answer { template, .. } => template.as_str(),
            crate::decision::Action::Escalate { template, .. } => {
                template.as_deref().unwrap_or("(none)")
            }
            crate::decision::Action::Log => "(none)",
        };
        differ("template", template, actual);
    }
    if let Some(language) = expect.language {
        differ(
            "language",
            language.as_str(),
            decision.diagnostics.language.as_str(),
        );
    }
    if let Some(needle) = &expect.reply_contains {
        let reply = decision.action.reply().unwrap_or("");
        if !reply.to_lowercase().contains(&needle.to_lowercase()) {
            failures.push(format!(
                "reply: expected it to contain `{needle}`, got `{reply}`"
            ));
        }
    }
    failures
}

/// What the golden cases never exercise: topics that never matched, templates never sent, and
/// decision sites in the scripts (`answer(…)`, `escalate(…)`, `log_only(…)`, a changed
/// `decision.…`) that never decided. An unexercised rule is an untested rule.
#[derive(Debug, Default)]
pub struct Coverage {
    pub topics: (usize, Vec<String>),
    pub templates: (usize, Vec<String>),
    /// (total sites, the missed ones as `scripts/escalation.rhai:40: escalate("legal", …)`)
    pub script_sites: (usize, Vec<String>),
}

impl Rulebook {
    /// Runs every golden case of this rulebook.
    pub fn run_golden(&self) -> Vec<CaseOutcome<'_>> {
        self.golden
            .iter()
            .map(|case| {
                let decision = self.decide(&case.message, &case.context);
                let failures = compare(&case.expect, &decision);
                CaseOutcome {
                    case,
                    decision,
                    failures,
                }
            })
            .collect()
    }

    /// Measures what `outcomes` (this rulebook's golden runs) exercised.
    pub fn coverage(&self, outcomes: &[CaseOutcome<'_>]) -> Coverage {
        let mut topics_seen = BTreeSet::new();
        let mut templates_seen = BTreeSet::new();
        let mut rules_seen = BTreeSet::new();
        for outcome in outcomes {
            let d = &outcome.decision;
            topics_seen.extend(d.topic_ids().map(str::to_owned));
            match &d.action {
                crate::decision::Action::Answer { template, .. } => {
                    templates_seen.insert(template.clone());
                }
                crate::decision::Action::Escalate {
                    template: Some(template),
                    ..
                } => {
                    templates_seen.insert(template.clone());
                }
                _ => {}
            }
            rules_seen.extend(d.diagnostics.rules.iter().cloned());
        }
        let topic_ids: Vec<String> = self.matcher.topics().iter().map(|t| t.id.clone()).collect();
        let missed_topics = topic_ids
            .iter()
            .filter(|t| !topics_seen.contains(*t))
            .cloned()
            .collect();
        let mut template_ids: Vec<String> = self.templates.ids().map(str::to_owned).collect();
        template_ids.sort();
        let missed_templates = template_ids
            .iter()
            .filter(|t| !templates_seen.contains(*t))
            .cloned()
            .collect();
        let mut sites = 0;
        let mut missed_sites = Vec::new();
        for file in [&self.source.escalation, &self.source.governance] {
            let name = file
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for (line, snippet) in decision_sites(&file.text) {
                sites += 1;
                if !rules_seen.contains(&format!("{name}:{line}")) {
                    missed_sites.push(format!("{}:{line}: {snippet}", file.path.display()));
                }
            }
        }
        Coverage {
            topics: (topic_ids.len(), missed_topics),
            templates: (template_ids.len(), missed_templates),
            script_sites: (sites, missed_sites),
        }
    }
}

/// Lines of a script where a decision is made or changed, with the line's code.
fn decision_sites(text: &str) -> Vec<(usize, String)> {
    let calls = ["answer(", "escalate(", "log_only("];
    let setters = [
        "decision.team",
        "decision.priority",
        "decision.template",
        "decision.reply",
    ];
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let code = line.split("//").next().unwrap_or("");
            let is_call = calls.iter().any(|c| {
                code.match_indices(c)
                    .any(|(at, _)| at == 0 || !matches!(code.as_bytes()[at - 1], b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_'))
            });
            let is_setter = setters.iter().any(|s| {
                code.find(s).is_some_and(|at| {
                    let rest = code[at + s.len()..].trim_start();
                    rest.starts_with('=') && !rest.starts_with("==")
                })
            });
            (is_call || is_setter).then(|| (i + 1, code.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_sites_are_calls_and_assignments_outside_comments() {
        let script = "// answer(\"x\", \"comment\")\nif a { return answer(\"x\", \"y\"); }\nlet d = escalate(\"t\", \"high\", \"r\");\ndecision.reply = shorten(decision.reply, 9);\nif decision.team == \"x\" {}\nmy_answer(1)\n";
        let sites: Vec<usize> = decision_sites(script).into_iter().map(|(l, _)| l).collect();
        assert_eq!(sites, [2, 3, 4]);
    }
}
