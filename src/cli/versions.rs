//! `webcare versions`: every rulebook version the store kept, with who put it in force and when.
//! A governance lead reads it to see which rules were live over a period (a report covers the
//! versions of its period) and to find the version a decision names; `webcare explain` uses the
//! kept files to explain an old decision with the rules of its moment.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use webcare_engine::store;

use crate::config::StoreArgs;

#[derive(Args)]
pub struct VersionsArgs {
    /// Print the versions as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(store_args: &StoreArgs, args: VersionsArgs) -> anyhow::Result<ExitCode> {
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
    let versions = store.rulebook_versions()?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&versions).context("versions as JSON")?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if versions.is_empty() {
        println!(
            "no rulebook versions in `{}` yet (they are kept from the first ingest or run on)",
            options.data_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<14}{:<22}BY", "VERSION", "ACTIVATED (UTC)");
    for version in &versions {
        for (i, activation) in version.activations.iter().enumerate() {
            let name = if i == 0 { version.version.as_str() } else { "" };
            println!(
                "{name:<14}{:<22}{}",
                activation.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                activation.by
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
