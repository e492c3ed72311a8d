//! `webcare check` and `webcare test`: what a governance lead runs after every edit, and what
//! CI runs on every rulebook change.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
pub struct TestArgs {
    /// Also list the cases that passed.
    #[arg(long, short)]
    verbose: bool,
    /// Report the topics, templates and script decision lines no golden case exercises.
    #[arg(long)]
    coverage: bool,
}

pub fn check(rules: Option<&Path>) -> anyhow::Result<ExitCode> {
    let rulebook = super::load_rulebook(rules)?;
    println!(
        "ok: rulebook `{}` version {}: {} topics, {} keywords, {} templates, {} teams, {} golden cases",
        rulebook.name,
        rulebook.version,
        rulebook.topic_count(),
        rulebook.keyword_count(),
        rulebook.templates().ids().count(),
        rulebook.teams().all().len(),
        rulebook.golden_cases().len()
    );
    // Decisions are the same either way, but a script on Rhai costs about three times the
    // time a decision takes: the lead who wrote the construct should hear of it here.
    for (script, why) in rulebook.interpreted_scripts() {
        if let Some(why) = why {
            println!(
                "note: {script} runs on the Rhai interpreter, not compiled ({why}); it decides the same, about 3x slower per message"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn test(rules: Option<&Path>, args: TestArgs) -> anyhow::Result<ExitCode> {
    let rulebook = super::load_rulebook(rules)?;
    let outcomes = rulebook.run_golden();
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    for outcome in &outcomes {
        if outcome.passed() {
            if args.verbose {
                println!("ok    {} ({})", outcome.case.name, outcome.case.location);
            }
            continue;
        }
        println!("FAIL  {} ({})", outcome.case.name, outcome.case.location);
        println!("      text: {}", outcome.case.message.text);
        for failure in &outcome.failures {
            println!("      {failure}");
        }
        for reason in &outcome.decision.diagnostics.reasons {
            println!("      why: {reason}");
        }
        for error in &outcome.decision.diagnostics.script_errors {
            println!("      script error: {error}");
        }
    }
    if args.coverage {
        let coverage = rulebook.coverage(&outcomes);
        for (what, (total, missed)) in [
            ("topics", &coverage.topics),
            ("templates", &coverage.templates),
            ("script decision lines", &coverage.script_sites),
        ] {
            println!(
                "coverage: {}/{total} {what} exercised",
                total - missed.len()
            );
            for item in missed {
                println!("  never exercised: {item}");
            }
        }
    }
    // The summary stays the last line, where CI and people look for it.
    println!("{} passed, {failed} failed", outcomes.len() - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
