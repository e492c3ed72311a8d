//! Opening a store: which backend, where its files live, and the owner-only permissions of the
//! data directory that holds customer messages. Kept apart from the [`Store`] trait so the
//! contract reads on its own.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, embedded, postgres, redact};

/// The backends. Closed: each embedded one has its own file layout in the data directory;
/// PostgreSQL has its schema on the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// One file, `webcare.redb`; every commit is fsynced before it returns.
    #[default]
    Redb,
    /// A directory, `sled/`; flushed before every acknowledgement.
    Sled,
    /// A PostgreSQL database ([`StoreOptions::url`]); nothing in the data directory. For
    /// several instances, or no single point of failure.
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Redb => "redb",
            Backend::Sled => "sled",
            Backend::Postgres => "postgres",
        }
    }

    /// Whether the store lives in the data directory (redb, sled) rather than on a server.
    pub fn is_embedded(self) -> bool {
        !matches!(self, Backend::Postgres)
    }

    /// The file or directory the backend keeps inside the data directory.
    pub fn path_in(self, data_dir: &Path) -> PathBuf {
        match self {
            Backend::Redb => data_dir.join("webcare.redb"),
            Backend::Sled => data_dir.join("sled"),
            Backend::Postgres => data_dir.to_owned(),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "redb" => Ok(Backend::Redb),
            "sled" => Ok(Backend::Sled),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::UnknownBackend(s.to_owned())),
        }
    }
}

/// How to open a store; the runtime form of the `[store]` config section.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub backend: Backend,
    /// Created on first run.
    pub data_dir: PathBuf,
    /// Replace e-mail addresses, phone numbers, IBANs and BSNs in stored text.
    pub redact: bool,
    /// The database's page cache; `None` is the backend's default (1 GiB for redb). A replay
    /// reads every page once and sets it small, so its memory does not grow with history.
    pub cache_bytes: Option<usize>,
    /// The PostgreSQL database of [`Backend::Postgres`]; a secret (see [`postgres::PgUrl`]).
    pub url: Option<postgres::PgUrl>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            backend: Backend::Redb,
            data_dir: PathBuf::from("data"),
            redact: false,
            cache_bytes: None,
            url: None,
        }
    }
}

/// Opens (or on first run creates) the store in `options.data_dir`. A data directory that
/// holds the other backend's files, or a file that cannot be read as a store, is an error that
/// says what to do; nothing is ever re-initialised over existing data.
pub fn open(options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if options.backend == Backend::Postgres {
        let url = options.url.as_ref().ok_or_else(|| StoreError::Config {
            reason: "the postgres store needs a database URL: set WEBCARE_STORE_URL, or `url_file` in `[store]`".into(),
        })?;
        return Ok(Arc::new(postgres::PgStore::open(url, options.redact)?));
    }
    let dir = &options.data_dir;
    create_private_dir(dir)?;
    for other in [Backend::Redb, Backend::Sled] {
        if other != options.backend
            && other.path_in(dir).exists()
            && !options.backend.path_in(dir).exists()
        {
            return Err(StoreError::WrongBackend {
                path: dir.clone(),
                found: other,
                wanted: options.backend,
            });
        }
    }
    let redactor = options.redact.then(redact::Redactor::new);
    let path = options.backend.path_in(dir);
    let kv: Arc<dyn embedded::Kv> = match options.backend {
        Backend::Redb => Arc::new(super::redb::RedbKv::open(&path, options.cache_bytes)?),
        Backend::Sled => Arc::new(super::sled::SledKv::open(&path, options.cache_bytes)?),
        Backend::Postgres => {
            return Err(StoreError::Config {
                reason: "postgres is not an embedded store".into(),
            });
        }
    };
    make_private(&path)?;
    Ok(Arc::new(embedded::Embedded::new(
        kv,
        options.backend,
        path,
        redactor,
    )?))
}

/// Creates the data directory readable by its owner only (0700 on Unix): it holds customer
/// messages and password hashes. An existing one is tightened to the same.
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: dir.to_owned(),
        action: "create the data directory",
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io)?;
    make_private(dir)
}

/// Owner-only permissions for the store's directory (0700) or file (0600) on Unix.
pub(crate) fn make_private(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| StoreError::Io {
            path: path.to_owned(),
            action: "read the permissions of",
            source,
        })?;
        let mode = if meta.is_dir() { 0o700 } else { 0o600 };
        if meta.permissions().mode() & 0o777 != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(
                |source| StoreError::Io {
                    path: path.to_owned(),
                    action: "make owner-only",
                    source,
                },
            )?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
