//! The versioned schema migrations, applied when a store opens and by `webcare migrate`. Each
//! is a SQL file in `migrations/`, compiled in, applied once in its own transaction and recorded
//! in `schema_migrations` (version, name, checksum, when).
//!
//! Why not refinery or sqlx's migrator: several instances start at once against one database,
//! and the whole list must be applied by exactly one of them while the others wait; here a
//! transaction-level advisory lock around the run does that in a dozen lines, and sqlx would
//! bring an async runtime into a sync store. The checksum catches a migration edited after it
//! was applied, which would leave databases that claim one version with different schemas.

use super::PgErr;
use r2d2_postgres::postgres::Client;
use sha2::{Digest, Sha256};

use crate::store::StoreError;

/// One migration: applied in order of `version`, never edited once released.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this webcare knows, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tables",
        sql: include_str!("migrations/0001_tables.sql"),
    },
    Migration {
        version: 2,
        name: "case_state",
        sql: include_str!("migrations/0002_case_state.sql"),
    },
    Migration {
        version: 3,
        name: "cluster",
        sql: include_str!("migrations/0003_cluster.sql"),
    },
    Migration {
        version: 4,
        name: "receipts",
        sql: include_str!("migrations/0004_receipts.sql"),
    },
    Migration {
        version: 5,
        name: "erased",
        sql: include_str!("migrations/0005_erased.sql"),
    },
    Migration {
        version: 6,
        name: "user_language",
        sql: include_str!("migrations/0006_user_language.sql"),
    },
    Migration {
        version: 7,
        name: "inbox_kept",
        sql: include_str!("migrations/0007_inbox_kept.sql"),
    },
];

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Applies the migrations `client`'s database lacks; returns the versions applied now.
pub fn apply(client: &mut Client) -> Result<Vec<i32>, PgErr> {
    let mut tx = client.transaction()?;
    // One instance migrates; the others wait here and then find nothing left to do.
    tx.execute("SELECT pg_advisory_xact_lock(1466262, 0)", &[])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    integer     PRIMARY KEY,
            name       text        NOT NULL,
            checksum   text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )?;
    let applied: Vec<(i32, String)> = tx
        .query(
            "SELECT version, checksum FROM schema_migrations ORDER BY version",
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some((newest, _)) = applied.last()
        && *newest > known
    {
        return Err(PgErr::Store(StoreError::Version {
            path: super::where_(),
            found: *newest as u32,
            supported: known as u32,
        }));
    }
    let mut now = Vec::new();
    for m in MIGRATIONS {
        match applied.iter().find(|(v, _)| *v == m.version) {
            Some((_, sum)) if *sum == checksum(m.sql) => {}
            Some(_) => {
                return Err(PgErr::Store(StoreError::Corrupt {
                    path: super::where_(),
                    reason: format!(
                        "schema migration {} (`{}`) was applied with different SQL than this webcare has",
                        m.version, m.name
                    ),
                }));
            }
            None => {
                tx.batch_execute(m.sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    &[&m.version, &m.name, &checksum(m.sql)],
                )?;
                now.push(m.version);
            }
        }
    }
    tx.commit()?;
    Ok(now)
}
