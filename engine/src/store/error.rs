//! [`StoreError`]: what can go wrong reading or writing the store, each with what to do about it.

use std::path::PathBuf;

use super::Backend;

/// Why the store could not read or write: storage failures only. A change a case rule refuses
/// (somebody else claimed it, the reply was already sent) is a [`CaseError`](super::CaseError). Messages say what
/// to do where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unknown store backend `{0}`; expected redb, sled or postgres")]
    UnknownBackend(String),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    #[error(
        "the store `{}` cannot be read ({reason}); it is damaged or not a webcare store. Restore it from a backup, or move it aside to start with an empty store",
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("the store `{}` is in use by another process; stop that webcare first", path.display())]
    Locked { path: PathBuf },
    #[error(
        "the data directory `{}` holds a {found} store, not {wanted}; use `--store {found}`, or another `--data` directory",
        path.display()
    )]
    WrongBackend {
        path: PathBuf,
        found: Backend,
        wanted: Backend,
    },
    #[error(
        "the store `{}` has format version {found}, this webcare reads version {supported}; use a matching webcare",
        path.display()
    )]
    Version {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("store operation failed on `{}`: {reason}", path.display())]
    Backend { path: PathBuf, reason: String },
    #[error("the store's writer has stopped after an earlier error; restart webcare")]
    WriterStopped,
    /// The database server cannot be reached right now; nothing was stored. Callers answer a
    /// delivery with 503 so the platform retries; the pool reconnects by itself.
    #[error(
        "the PostgreSQL store cannot be reached ({reason}); nothing was stored. Check that the server runs and the URL is right; webcare reconnects by itself"
    )]
    Unavailable { reason: String },
    #[error("{reason}")]
    Config { reason: String },
}
