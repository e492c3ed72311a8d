//! The PostgreSQL store's errors: what a driver error means for the caller (a server that
//! cannot be reached is [`StoreError::Unavailable`], which the channels answer with 503), and
//! the error type the area files share. Apart from the store itself because every area file
//! converts through it.

use std::path::PathBuf;

use r2d2_postgres::postgres;

use crate::case::CaseError;
use crate::store::StoreError;

pub(super) fn where_() -> PathBuf {
    PathBuf::from("postgresql")
}

/// The errors inside this module: a storage failure or a case rule's refusal. Converted at the
/// [`Store`] boundary with [`PgErr::store`] and [`PgErr::case`]; not a `From` into
/// [`StoreError`], which would make `?` ambiguous in the embedded backends.
#[derive(Debug)]
pub enum PgErr {
    Store(StoreError),
    Case(CaseError),
}

impl PgErr {
    pub fn store(self) -> StoreError {
        match self {
            PgErr::Store(e) | PgErr::Case(CaseError::Store(e)) => e,
            PgErr::Case(other) => StoreError::Backend {
                path: where_(),
                reason: other.to_string(),
            },
        }
    }

    pub fn case(self) -> CaseError {
        match self {
            PgErr::Store(e) => CaseError::Store(e),
            PgErr::Case(e) => e,
        }
    }
}

impl From<StoreError> for PgErr {
    fn from(e: StoreError) -> Self {
        PgErr::Store(e)
    }
}

impl From<CaseError> for PgErr {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::Store(e) => PgErr::Store(e),
            other => PgErr::Case(other),
        }
    }
}

impl From<postgres::Error> for PgErr {
    fn from(e: postgres::Error) -> Self {
        PgErr::Store(db_error(e))
    }
}

/// A driver error as a [`StoreError`]: a server that cannot be reached is
/// [`StoreError::Unavailable`].
pub(super) fn db_error(e: postgres::Error) -> StoreError {
    {
        use postgres::error::SqlState;
        let unreachable = e.is_closed()
            || e.code().is_some_and(|c| {
                c.code().starts_with("08")
                    || *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CRASH_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW
            })
            || (e.code().is_none()
                && std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()));
        if unreachable {
            StoreError::Unavailable {
                reason: e.to_string(),
            }
        } else {
            let reason = match e.as_db_error() {
                Some(db) => format!("{} ({})", db.message(), db.code().code()),
                None => e.to_string(),
            };
            StoreError::Backend {
                path: where_(),
                reason,
            }
        }
    }
}

/// A row that does not read as a webcare record.
pub(super) fn corrupt(what: impl std::fmt::Display) -> PgErr {
    PgErr::Store(StoreError::Corrupt {
        path: where_(),
        reason: what.to_string(),
    })
}
