//! `webcare explain MESSAGE_ID`: why one stored message got its decision. It decides the
//! message again with the facts it was decided with and shows every step: the normalised text,
//! each topic and the keywords that matched, what the escalation script proposed, what
//! governance made of it, the final decision, the rulebook version and the reasons.
//!
//! Customer data goes to a terminal here, so control characters in it are shown escaped
//! (`\u{1b}`), never sent raw: an escape sequence in a message must not recolour, retitle or
//! rewrite the operator's terminal, and a newline in an id must not forge a line.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use webcare_engine::pipeline::ScriptStep;
use webcare_engine::store::{self, StoredMessage};
use webcare_engine::{ChannelKind, Decision, Rulebook, RulebookSource, Trace};

use crate::config::StoreArgs;

#[derive(Args)]
pub struct ExplainArgs {
    /// The platform id of the message, as in the store (`webcare replay --from-store` lists them).
    message_id: String,
    /// The channel of the message, when the same id exists on several channels.
    #[arg(long)]
    channel: Option<ChannelKind>,
    /// Print the explanation as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(
    rules: Option<&Path>,
    store_args: &StoreArgs,
    args: ExplainArgs,
) -> anyhow::Result<ExitCode> {
    let config = store_args.resolve()?;
    let options = &config.options;
    if options.backend.is_embedded() && !options.backend.path_in(&options.data_dir).exists() {
        bail!(
            "there is no {} store in `{}`; pass `--data DIR` of an existing store",
            options.backend,
            options.data_dir.display()
        );
    }
    let store = store::open(options)?;
    let channels: Vec<ChannelKind> = match args.channel {
        Some(channel) => vec![channel],
        None => ChannelKind::ALL.to_vec(),
    };
    let mut found = Vec::new();
    for channel in channels {
        if let Some(stored) = store.message(channel, &args.message_id)? {
            found.push(stored);
        }
    }
    let stored = match found.len() {
        0 => bail!("no stored message has id `{}`", args.message_id),
        1 => found.remove(0),
        _ => bail!(
            "message id `{}` exists on several channels ({}); add `--channel`",
            args.message_id,
            found
                .iter()
                .map(|s| s.message.channel.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let current = super::load_rulebook(rules)?;
    let (rulebook, version_note) = rulebook_of(&stored, current, store.as_ref())?;
    let (decision, trace, again_note) =
        rulebook.explain_again(&stored.message, &stored.facts, &stored.decision);
    let notes: Vec<String> = version_note.into_iter().chain(again_note).collect();
    if args.json {
        let value = serde_json::json!({
            "message": stored.message,
            "stored_decision": webcare_engine::DecisionRecord::from(&stored.decision),
            "rulebook": rulebook.version,
            // `null` or one string, as before; both notes joined when there are two.
            "note": (!notes.is_empty()).then(|| notes.join("; ")),
            "normalized": trace.normalized,
            "topics": decision.diagnostics.topics,
            "proposal": trace.proposal.as_ref().map(|r| r.as_ref().map_err(String::as_str)),
            "review": trace.review.as_ref().map(|r| r.as_ref().map_err(String::as_str)),
            "decision": webcare_engine::DecisionRecord::from(&decision),
            "mode": stored.mode,
            "acted_on": stored.mode.effect(),
            "shadow_decision": stored.shadow.as_ref().map(webcare_engine::DecisionRecord::from),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).context("explanation as JSON")?
        );
    } else {
        print!(
            "{}",
            terminal_safe(
                &describe(&stored, &decision, &trace, &rulebook, &notes),
                true
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The rulebook that made the stored decision: the one given when it is that version, else the
/// version the store kept when it was put in force. Only a version the store does not have (a
/// store older than rulebook versions, or a version that no longer compiles) is explained with
/// the given rulebook, and a note says so.
fn rulebook_of(
    stored: &StoredMessage,
    current: Rulebook,
    store: &dyn store::Store,
) -> anyhow::Result<(Rulebook, Option<String>)> {
    let version = &stored.decision.diagnostics.rulebook;
    if *version == current.version {
        return Ok((current, None));
    }
    let problem = match store.rulebook_version(version)? {
        Some(files) => match RulebookSource::from_files(&files).and_then(Rulebook::compile) {
            Ok(then) => return Ok((then, None)),
            Err(errors) => format!("is stored but no longer loads ({errors})"),
        },
        None => "is not in the store".to_owned(),
    };
    let note = format!(
        "the message was decided by rulebook {version}, which {problem}; explaining with the given rulebook {} — the steps may differ from what happened then",
        current.version
    );
    Ok((current, Some(note)))
}

/// `text` with every control character escaped (`\u{1b}`); newlines kept when `lines`.
fn terminal_safe(text: &str, lines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && !(lines && c == '\n') {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn describe_step(step: &Option<Result<ScriptStep, String>>) -> String {
    match step {
        None => "did not run".to_owned(),
        Some(Err(error)) => format!("FAILED: {error}"),
        Some(Ok(step)) => step.to_string(),
    }
}

fn describe(
    stored: &StoredMessage,
    decision: &Decision,
    trace: &Trace,
    rulebook: &Rulebook,
    notes: &[String],
) -> String {
    let m = &stored.message;
    let d = &decision.diagnostics;
    let mut out = String::new();
    out.push_str(&format!(
        "message {} on {} in conversation {}, received {}\n",
        terminal_safe(&m.id, false),
        m.channel,
        terminal_safe(&m.conversation, false),
        m.received_at
    ));
    out.push_str(&format!("  text:       {:?}\n", m.text));
    out.push_str(&format!("  normalised: {:?}\n", trace.normalized));
    for note in notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out.push_str(&format!(
        "conversation then: {}, {} messages today, {} automatic replies, {} complaints in 24 h, {} in 7 days\n",
        stored.facts.state.as_str(),
        stored.facts.messages_today,
        stored.facts.auto_replies,
        stored.facts.complaints_24h,
        stored.facts.complaints_7d
    ));
    if d.topics.is_empty() {
        out.push_str("topics: none matched\n");
    }
    for (i, t) in d.topics.iter().enumerate() {
        let role = if i == 0 { " (main)" } else { "" };
        out.push_str(&format!(
            "topic {}{role}: {}, matched {}\n",
            t.topic,
            t.category,
            t.matched.join(", ")
        ));
    }
    out.push_str(&format!(
        "category {}, language {}, sentiment {} ({})\n",
        d.category,
        d.language.as_str(),
        d.sentiment.label.as_str(),
        d.sentiment.score
    ));
    out.push_str(&format!(
        "escalation script: {}\n",
        describe_step(&trace.proposal)
    ));
    let review = if trace.review.is_some() && trace.review == trace.proposal {
        "let the proposal through unchanged".to_owned()
    } else {
        describe_step(&trace.review)
    };
    out.push_str(&format!("governance script: {review}\n"));
    out.push_str(&format!("decision: {}", decision.action.name()));
    if let Some(team) = decision.action.team() {
        out.push_str(&format!(" to `{team}`"));
    }
    if let Some(priority) = decision.action.priority() {
        out.push_str(&format!(", priority {priority}"));
    }
    out.push('\n');
    if let Some(reply) = decision.action.reply() {
        out.push_str(&format!("  reply: {reply}\n"));
    }
    for reason in &d.reasons {
        out.push_str(&format!("  why: {reason}\n"));
    }
    out.push_str(&format!("  rules: {}\n", d.rules.join(", ")));
    for error in &d.script_errors {
        out.push_str(&format!("  script error: {error}\n"));
    }
    out.push_str(&format!(
        "rulebook {} ({})\n",
        rulebook.version, rulebook.name
    ));
    if stored.decision.action.name() != decision.action.name() {
        out.push_str(&format!(
            "warning: the stored decision was {}; deciding again gives {}\n",
            stored.decision.action.name(),
            decision.action.name()
        ));
    }
    out.push_str(&format!(
        "mode: {}, the decision was {}\n",
        stored.mode,
        stored.mode.effect()
    ));
    if let Some(shadow) = &stored.shadow {
        out.push_str(&format!(
            "shadow rulebook {} decided: {}",
            shadow.diagnostics.rulebook,
            shadow.action.name()
        ));
        if let Some(team) = shadow.action.team() {
            out.push_str(&format!(" to `{team}`"));
        }
        match webcare_engine::diff::change_kind(&stored.decision, shadow) {
            Some(change) => out.push_str(&format!(" ({change}); not acted on\n")),
            None => out.push_str(" (the same); not acted on\n"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            super::terminal_safe("a\u{1b}[31mb\nc", false),
            "a\\u{1b}[31mb\\u{a}c"
        );
        assert_eq!(super::terminal_safe("a\nb\u{7}", true), "a\nb\\u{7}");
    }
}
