//! `webcare chat`: a governance lead types messages and sees exactly what the bot would do,
//! and why, without any platform, store or network.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use webcare_engine::{Action, ChannelKind, DecideContext, Decision, Inbound};

#[derive(Args)]
pub struct ChatArgs {
    /// The channel the messages seem to come from (its reply limit applies).
    #[arg(long, default_value = "webchat")]
    channel: ChannelKind,
    /// Pretend it is this local time (`2026-11-27 17:55`), to try office hours.
    #[arg(long)]
    at: Option<String>,
    /// Switch crisis mode on.
    #[arg(long)]
    crisis: bool,
}

pub fn run(rules: Option<&Path>, args: ChatArgs) -> anyhow::Result<ExitCode> {
    let rulebook = super::load_rulebook(rules)?;
    let fixed_time = args
        .at
        .as_deref()
        .map(|_| super::parse_at(&rulebook, args.at.as_deref()))
        .transpose()?;
    let interactive = std::io::stdin().is_terminal();
    let mut out = std::io::stdout().lock();
    if interactive {
        writeln!(
            out,
            "webcare chat — rulebook `{}` version {} ({} topics). Type a message; Ctrl-D ends.",
            rulebook.name,
            rulebook.version,
            rulebook.topic_count()
        )?;
    }
    let context = DecideContext {
        crisis_mode: args.crisis.then_some(true),
        ..DecideContext::default()
    };
    let mut stdin = std::io::stdin().lock();
    let mut line = Vec::new();
    let mut count = 0usize;
    loop {
        if interactive {
            write!(out, "> ")?;
            out.flush()?;
        }
        line.clear();
        if stdin.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        count += 1;
        let now = fixed_time.unwrap_or_else(chrono::Utc::now);
        let message = Inbound::from_text(format!("chat-{count}"), args.channel, text, now);
        let decision = rulebook.decide(&message, &context);
        write!(out, "{}", describe(&decision))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The human-readable account of a decision, as `chat` prints it.
pub fn describe(decision: &Decision) -> String {
    let d = &decision.diagnostics;
    let mut text = match &decision.action {
        Action::Answer { template, .. } => format!("ANSWER with template `{template}`\n"),
        Action::Escalate { team, priority, .. } => {
            format!("ESCALATE to `{team}`, priority {priority}\n")
        }
        Action::Log => "LOG only, nothing is sent\n".to_owned(),
    };
    if let Some(reply) = decision.action.reply() {
        text.push_str(&format!("  reply: {reply}\n"));
    }
    text.push_str(&format!(
        "  category {}, language {}, sentiment {} ({})\n",
        d.category,
        d.language.as_str(),
        d.sentiment.label.as_str(),
        d.sentiment.score
    ));
    for reason in &d.reasons {
        text.push_str(&format!("  why: {reason}\n"));
    }
    text.push_str(&format!("  rules: {}\n", d.rules.join(", ")));
    for error in &d.script_errors {
        text.push_str(&format!("  script error: {error}\n"));
    }
    text.push_str(&format!("  rulebook {}\n", d.rulebook));
    text
}
