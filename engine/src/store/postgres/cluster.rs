//! [`Cluster`] on PostgreSQL: signals by `NOTIFY`/`LISTEN`, roles by session advisory locks
//! (both in `listen`), the inbox's sessions and login limits in two small tables
//! (`migrations/0003_cluster.sql`), and a refused action kept for the page the browser is
//! sent back to in a third (`migrations/0007_inbox_kept.sql`). The store's own changes that other instances must follow
//! are announced by [`announce`] inside the transaction that makes them: PostgreSQL delivers a
//! notification only when (and if) its transaction commits, so no instance hears of a change
//! that was rolled back, and none misses one that was committed while the sender crashed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use r2d2_postgres::postgres::{self, GenericClient};

use super::listen::{self, Payload};
use super::{PgErr, Pool, get};
use crate::cluster::{
    CHANNEL, Cluster, OnLeadership, OnSignal, SharedSession, SharedState, Signal,
};
use crate::store::StoreError;

/// The PostgreSQL [`Cluster`]: one per open store.
pub struct PgCluster {
    /// `None` only while dropping (the sync client must not close on a runtime thread).
    pool: Option<Pool>,
    config: postgres::Config,
    instance: String,
    subscribers: Arc<Mutex<Vec<OnSignal>>>,
    listening: AtomicBool,
    /// Ends the listener and campaign threads when the store goes.
    stop: Arc<AtomicBool>,
    /// The outbox claim lease in seconds, shared with the store that claims.
    claim_secs: Arc<std::sync::atomic::AtomicI64>,
}

/// The advisory lock key space of login limits (see `listen::ROLE_KEY` for the others).
const LIMIT_KEY: i32 = 1466264;

/// Sends `signal` from `from` when the transaction (or session) `client` is in commits.
pub(super) fn announce(
    client: &mut impl GenericClient,
    from: &str,
    signal: &Signal,
) -> Result<(), PgErr> {
    let payload = serde_json::to_string(&Payload {
        from: from.to_owned(),
        signal: signal.clone(),
    })
    .map_err(|e| super::corrupt(format!("a signal cannot be written: {e}")))?;
    client.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])?;
    Ok(())
}

impl PgCluster {
    pub(super) fn new(
        pool: Pool,
        config: postgres::Config,
        instance: String,
        claim_secs: Arc<std::sync::atomic::AtomicI64>,
    ) -> Self {
        PgCluster {
            claim_secs,
            pool: Some(pool),
            config,
            instance,
            subscribers: Arc::default(),
            listening: AtomicBool::new(false),
            stop: Arc::default(),
        }
    }

    fn conn(
        &self,
    ) -> Result<
        r2d2::PooledConnection<r2d2_postgres::PostgresConnectionManager<postgres::NoTls>>,
        StoreError,
    > {
        match &self.pool {
            Some(pool) => get(pool),
            None => Err(StoreError::Unavailable {
                reason: "the store is closing".into(),
            }),
        }
    }

    fn thread_error(e: std::io::Error) -> StoreError {
        StoreError::Backend {
            path: super::where_(),
            reason: format!("cannot start a thread: {e}"),
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(pool) = self.pool.take() {
            // As `PgStore`'s drop: the sync client closes on a runtime of its own.
            let closer = std::thread::Builder::new()
                .name("webcare-pg-close".into())
                .spawn(move || drop(pool));
            if let Ok(closer) = closer {
                let _ = closer.join();
            }
        }
    }
}

fn store_err(e: PgErr) -> StoreError {
    e.store()
}

impl Cluster for PgCluster {
    fn instance(&self) -> &str {
        &self.instance
    }

    fn publish(&self, signal: &Signal) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        announce(&mut *conn, &self.instance, signal).map_err(store_err)
    }

    fn subscribe(&self, on: OnSignal) {
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(on);
        if !self.listening.swap(true, Ordering::AcqRel)
            && let Err(error) = listen::listener(
                self.config.clone(),
                self.instance.clone(),
                Arc::clone(&self.subscribers),
                Arc::clone(&self.stop),
            )
        {
            self.listening.store(false, Ordering::Release);
            tracing::error!(%error, "cluster: cannot start the listener thread");
        }
    }

    fn campaign(&self, role: &str, on: OnLeadership) -> Result<bool, StoreError> {
        listen::campaign(self.config.clone(), role, on, Arc::clone(&self.stop))
            .map_err(Self::thread_error)
    }

    fn state(&self) -> Result<SharedState, StoreError> {
        let row = self
            .conn()?
            .query_one(
                "SELECT (SELECT version FROM rulebook_activations ORDER BY id DESC LIMIT 1),
                        (SELECT value FROM settings WHERE name = 'crisis_switch')",
                &[],
            )
            .map_err(|e| PgErr::from(e).store())?;
        let crisis: Option<serde_json::Value> = row.get(1);
        Ok(SharedState {
            rulebook: row.get(0),
            crisis: crisis.and_then(|v| v.as_bool()),
        })
    }

    fn session_open(&self, digest: [u8; 32], session: &SharedSession) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let run = |conn: &mut postgres::Client| -> Result<(), postgres::Error> {
            let mut tx = conn.transaction()?;
            // Expired sessions go when a new one opens: no timer, bounded by one lifetime.
            tx.execute("DELETE FROM inbox_sessions WHERE expires_at <= now()", &[])?;
            tx.execute(
                "INSERT INTO inbox_sessions (digest, login, csrf, expires_at, stamp) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (digest) DO UPDATE SET login = EXCLUDED.login, csrf = EXCLUDED.csrf,
                   expires_at = EXCLUDED.expires_at, stamp = EXCLUDED.stamp",
                &[&&digest[..], &session.login, &session.csrf, &session.expires, &&session.stamp[..]],
            )?;
            tx.commit()
        };
        run(&mut conn).map_err(|e| PgErr::from(e).store())
    }

    fn session(
        &self,
        digest: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<SharedSession>, StoreError> {
        let row = self
            .conn()?
            .query_opt(
                "SELECT login, csrf, expires_at, stamp FROM inbox_sessions WHERE digest = $1 AND expires_at > $2",
                &[&&digest[..], &now],
            )
            .map_err(|e| PgErr::from(e).store())?;
        Ok(row.and_then(|r| {
            let stamp: Vec<u8> = r.get(3);
            Some(SharedSession {
                login: r.get(0),
                csrf: r.get(1),
                expires: r.get(2),
                stamp: stamp.try_into().ok()?,
            })
        }))
    }

    fn session_close(&self, digest: [u8; 32]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let run = |conn: &mut postgres::Client| -> Result<(), PgErr> {
            let mut tx = conn.transaction()?;
            let ended = tx.query_opt(
                "DELETE FROM inbox_sessions WHERE digest = $1 RETURNING login",
                &[&&digest[..]],
            )?;
            if let Some(row) = ended {
                announce(
                    &mut tx,
                    &self.instance,
                    &Signal::Access { login: row.get(0) },
                )?;
            }
            tx.commit()?;
            Ok(())
        };
        run(&mut conn).map_err(store_err)
    }

    fn limit_attempt(
        &self,
        keys: &[&str],
        now: DateTime<Utc>,
        max: usize,
        window: chrono::Duration,
    ) -> Result<Result<(), chrono::Duration>, StoreError> {
        let mut conn = self.conn()?;
        let mut sorted: Vec<&str> = keys.to_vec();
        // One order for the locks, so two attempts on the same keys cannot deadlock.
        sorted.sort_unstable();
        sorted.dedup();
        let keys: Vec<String> = sorted.iter().map(|k| (*k).to_owned()).collect();
        let since = now - window;
        let run =
            |conn: &mut postgres::Client| -> Result<Result<(), chrono::Duration>, postgres::Error> {
                let mut tx = conn.transaction()?;
                for key in &keys {
                    tx.execute(
                        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                        &[&LIMIT_KEY, key],
                    )?;
                }
                // Old attempts of every key go after a day at the latest (the longest window any
                // limiter uses is far shorter), so an attack cannot grow the table without end.
                tx.execute(
                    "DELETE FROM login_failures WHERE at <= $1 OR (key = ANY($2) AND at <= $3)",
                    &[
                        &(now - chrono::Duration::days(1).max(window)),
                        &keys,
                        &since,
                    ],
                )?;
                let rows = tx.query(
                    "SELECT count(*), min(at) FROM login_failures WHERE key = ANY($1) GROUP BY key",
                    &[&keys],
                )?;
                let mut wait: Option<chrono::Duration> = None;
                for row in &rows {
                    let count: i64 = row.get(0);
                    let oldest: DateTime<Utc> = row.get(1);
                    if count as usize >= max {
                        let until = oldest + window - now;
                        wait = Some(wait.map_or(until, |w| w.max(until)));
                    }
                }
                if let Some(wait) = wait {
                    tx.commit()?;
                    return Ok(Err(wait));
                }
                for key in &keys {
                    tx.execute(
                        "INSERT INTO login_failures (key, at) VALUES ($1, $2)",
                        &[key, &now],
                    )?;
                }
                tx.commit()?;
                Ok(Ok(()))
            };
        run(&mut conn).map_err(|e| PgErr::from(e).store())
    }

    fn set_claim(&self, lease: std::time::Duration) {
        let secs = i64::try_from(lease.as_secs()).unwrap_or(i64::MAX).max(1);
        self.claim_secs.store(secs, Ordering::Release);
    }

    fn limit_forget(&self, key: &str, all: bool) -> Result<(), StoreError> {
        let sql = if all {
            "DELETE FROM login_failures WHERE key = $1"
        } else {
            "DELETE FROM login_failures WHERE id = (SELECT id FROM login_failures WHERE key = $1 ORDER BY at DESC, id DESC LIMIT 1)"
        };
        self.conn()?
            .execute(sql, &[&key])
            .map(|_| ())
            .map_err(|e| PgErr::from(e).store())
    }

    fn keep(
        &self,
        session: [u8; 32],
        escalation: u64,
        kept: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let run = |conn: &mut postgres::Client| -> Result<(), postgres::Error> {
            let mut tx = conn.transaction()?;
            // What expired goes when something new is kept: no timer, bounded by the TTL.
            tx.execute("DELETE FROM inbox_kept WHERE expires_at <= $1", &[&now])?;
            tx.execute(
                "INSERT INTO inbox_kept (session, escalation, kept, expires_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (session, escalation) DO UPDATE SET kept = EXCLUDED.kept, expires_at = EXCLUDED.expires_at",
                &[&&session[..], &(escalation as i64), &kept, &expires],
            )?;
            tx.commit()
        };
        run(&mut conn).map_err(|e| PgErr::from(e).store())
    }

    fn kept(
        &self,
        session: [u8; 32],
        escalation: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let row = self
            .conn()?
            .query_opt(
                "SELECT kept FROM inbox_kept WHERE session = $1 AND escalation = $2 AND expires_at > $3",
                &[&&session[..], &(escalation as i64), &now],
            )
            .map_err(|e| PgErr::from(e).store())?;
        Ok(row.map(|r| r.get(0)))
    }

    fn forget_kept(&self, session: [u8; 32], escalation: u64) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "DELETE FROM inbox_kept WHERE session = $1 AND escalation = $2",
                &[&&session[..], &(escalation as i64)],
            )
            .map(|_| ())
            .map_err(|e| PgErr::from(e).store())
    }
}
