//! `webcare backup DIR` and `webcare restore DIR`: a consistent copy of the store, and putting
//! one back. A backup reads one snapshot of the store (so it is the store as of one moment,
//! even with messages arriving) and writes only live data into a fresh file in `DIR`, owner
//! only. It is taken while `webcare run` holds the store too: the store is opened read-write
//! only by one process, so then the running service makes the copy through its admin API
//! (`WEBCARE_ADMIN_TOKEN`), on this machine's disk. A restore needs the service stopped: it
//! checks that the backup opens as a store, moves the current store aside (never deletes it)
//! and puts the copy in its place. `webcare forget` uses the same copy to leave no erased text
//! in the file (see [`rewrite_store`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use webcare_engine::store::{self, Backend, StoreError, StoreOptions};

use crate::config::StoreArgs;

#[derive(Args)]
pub struct BackupArgs {
    /// The directory to write the copy into; created if missing, must not hold a store yet.
    dir: PathBuf,
    /// The running service, when it holds the store; default `http://` + `[server] listen`.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// A directory written by `webcare backup`.
    dir: PathBuf,
}

pub fn backup(store_args: &StoreArgs, args: BackupArgs) -> anyhow::Result<ExitCode> {
    let config = store_args.resolve()?;
    let target = args.dir.join(file_name(config.options.backend));
    if target.exists() {
        bail!(
            "`{}` exists already; back up into a new or empty directory",
            target.display()
        );
    }
    match store::open(&config.options) {
        Ok(store) => {
            create_dir(&args.dir)?;
            store.backup(&target)?;
        }
        Err(StoreError::Locked { .. }) => {
            // `webcare run` holds the store: it makes the copy itself.
            create_dir(&args.dir)?;
            let dir = std::fs::canonicalize(&args.dir)
                .with_context(|| format!("cannot find `{}`", args.dir.display()))?;
            let absolute = dir.join(file_name(config.options.backend));
            super::admin::backup_via_service(store_args, args.url.as_deref(), &absolute)?;
        }
        Err(error) => return Err(error.into()),
    }
    println!(
        "backup: {} (restore with `webcare restore {}` while the service is stopped)",
        target.display(),
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn restore(store_args: &StoreArgs, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let config = store_args.resolve()?;
    let options = &config.options;
    let source = args.dir.join(file_name(options.backend));
    if !source.exists() {
        bail!(
            "`{}` holds no {} backup (`{}` is missing)",
            args.dir.display(),
            options.backend,
            source.display()
        );
    }
    // The backup must open as a store before anything is moved; a scratch copy, so opening
    // it changes nothing in the backup itself.
    let check = options.data_dir.join("restore-check");
    remove_path(&check)?;
    let scratch = check.join(file_name(options.backend));
    std::fs::create_dir_all(&check)
        .with_context(|| format!("cannot create `{}`", check.display()))?;
    copy_path(&source, &scratch)?;
    let usable = store::open(&StoreOptions {
        data_dir: check.clone(),
        ..options.clone()
    })
    .map(drop);
    if let Err(e) = usable {
        remove_path(&check)?;
        bail!("the backup cannot be used: {e}");
    }

    let live = options.backend.path_in(&options.data_dir);
    let mut aside = None;
    if live.exists() {
        // Opening it proves nobody runs on it (a running service holds it).
        if let Err(StoreError::Locked { .. }) = store::open(options) {
            bail!(
                "the store `{}` is in use; stop `webcare run` first",
                live.display()
            );
        }
        let name = format!(
            "{}.before-restore-{}",
            file_name(options.backend),
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        );
        let moved = options.data_dir.join(name);
        std::fs::rename(&live, &moved)
            .with_context(|| format!("cannot move `{}` aside", live.display()))?;
        aside = Some(moved);
    }
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("cannot create `{}`", options.data_dir.display()))?;
    std::fs::rename(&scratch, &live)
        .or_else(|_| copy_path(&scratch, &live).map_err(std::io::Error::other))
        .with_context(|| format!("cannot put the backup at `{}`", live.display()))?;
    remove_path(&check)?;
    drop(store::open(options)?);
    println!("restored `{}` from `{}`", live.display(), source.display());
    if let Some(aside) = aside {
        println!(
            "the store it replaced is kept as `{}`; delete it when you no longer need it",
            aside.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Rewrites the store at `options` into a fresh file and puts it in place (the store must not
/// be open): what an erasure freed is then gone from the disk, not only from the index.
pub fn rewrite_store(options: &StoreOptions) -> anyhow::Result<()> {
    let live = options.backend.path_in(&options.data_dir);
    let fresh = options
        .data_dir
        .join(format!("{}.rewrite", file_name(options.backend)));
    remove_path(&fresh)?;
    {
        let store = store::open(options)?;
        store.backup(&fresh)?;
    }
    remove_path(&live)?;
    std::fs::rename(&fresh, &live)
        .with_context(|| format!("cannot put the rewritten store at `{}`", live.display()))?;
    Ok(())
}

fn file_name(backend: Backend) -> String {
    backend
        .path_in(Path::new(""))
        .to_string_lossy()
        .into_owned()
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create `{}`", dir.display()))
}

/// Copies a store file, or a store directory (sled) with its files.
fn copy_path(from: &Path, to: &Path) -> anyhow::Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to).with_context(|| format!("cannot create `{}`", to.display()))?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_path(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to)
            .map(drop)
            .with_context(|| format!("cannot copy `{}` to `{}`", from.display(), to.display()))
    }
}

fn remove_path(path: &Path) -> anyhow::Result<()> {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match removed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove `{}`", path.display())),
    }
}
