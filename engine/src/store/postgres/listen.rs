//! The two dedicated connections of [`Cluster`](crate::cluster::Cluster) on PostgreSQL, each on
//! a thread of its own: the listener (`LISTEN webcare`, handing each notification to the
//! subscribers) and the campaign for a role (a session-level advisory lock held as long as the
//! connection lives). They are not pool connections: a LISTEN belongs to one session, and a
//! session lock is released when its session ends, which is exactly how a dead leader gives up
//! its role. Both reconnect by themselves; the sync client blocks, so neither may run on the
//! async runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2_postgres::postgres::fallible_iterator::FallibleIterator;
use r2d2_postgres::postgres::{self, Client, NoTls};

use crate::cluster::{CHANNEL, LEADER_RETRY, OnLeadership, OnSignal, Received, Signal};

/// A notification's payload: the sender and what changed.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Payload {
    pub from: String,
    pub signal: Signal,
}

/// The first advisory lock key of leader roles; conversations use 1466262 (transaction locks
/// conflict with session locks of the same key, so the roles keep a key of their own).
const ROLE_KEY: i32 = 1466263;

/// How long the leader's check of its own connection may take before it gives the role up: a
/// leader that cannot reach the database must stop before the database lets another take over
/// (which takes the server's keepalive time, set on the session to about 11 s).
const ALIVE_TIMEOUT: Duration = Duration::from_secs(3);

/// A dedicated connection (never from the pool), with TCP keepalives on both ends so a
/// vanished peer is noticed in seconds rather than the system's two hours.
fn connect(config: &postgres::Config, name: &str) -> Result<Client, postgres::Error> {
    let mut config = config.clone();
    config
        .application_name(name)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3);
    let mut client = config.connect(NoTls)?;
    client.batch_execute(
        "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3",
    )?;
    Ok(client)
}

/// Sleeps `total` in short steps, returning early (`true`) when `stop` is set.
fn nap(total: Duration, stop: &AtomicBool) -> bool {
    let step = Duration::from_millis(100);
    let mut slept = Duration::ZERO;
    while slept < total {
        if stop.load(Ordering::Acquire) {
            return true;
        }
        std::thread::sleep(step);
        slept += step;
    }
    stop.load(Ordering::Acquire)
}

/// Starts the listener thread: every notification on [`CHANNEL`] goes to each of
/// `subscribers`; after a reconnect they get [`Signal::Resync`] first.
pub(super) fn listener(
    config: postgres::Config,
    instance: String,
    subscribers: Arc<Mutex<Vec<OnSignal>>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let dispatch = move |received: Received| {
        let subscribers = subscribers.lock().unwrap_or_else(|p| p.into_inner());
        for on in subscribers.iter() {
            on(received.clone());
        }
    };
    std::thread::Builder::new()
        .name("webcare-pg-listen".into())
        .spawn(move || {
            let mut connected_before = false;
            let mut wait = Duration::from_millis(200);
            while !stop.load(Ordering::Acquire) {
                let mut client = match connect(&config, "webcare-listen")
                    .and_then(|mut c| c.batch_execute(&format!("LISTEN {CHANNEL}")).map(|()| c))
                {
                    Ok(client) => client,
                    Err(error) => {
                        tracing::warn!(%error, retry_in = ?wait, "cluster: cannot listen for changes of other instances");
                        if nap(wait, &stop) {
                            return;
                        }
                        wait = (wait * 2).min(Duration::from_secs(5));
                        continue;
                    }
                };
                wait = Duration::from_millis(200);
                if connected_before {
                    tracing::info!("cluster: listening again; re-reading the shared state");
                    dispatch(Received {
                        signal: Signal::Resync,
                        own: false,
                    });
                }
                connected_before = true;
                loop {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    let next = client
                        .notifications()
                        .timeout_iter(Duration::from_millis(250))
                        .next();
                    match next {
                        Ok(Some(note)) => match serde_json::from_str::<Payload>(note.payload()) {
                            Ok(payload) => dispatch(Received {
                                own: payload.from == instance,
                                signal: payload.signal,
                            }),
                            // A newer webcare's signal: the periodic re-check covers it.
                            Err(error) => {
                                tracing::debug!(%error, "cluster: a signal this webcare does not know")
                            }
                        },
                        Ok(None) if !client.is_closed() => {}
                        Ok(None) => break,
                        Err(error) => {
                            tracing::warn!(%error, "cluster: the listening connection ended; reconnecting");
                            break;
                        }
                    }
                }
            }
        })
        .map(|_| ())
}

/// Takes `role`'s lock now if it is free (the first try, on the caller's thread), then keeps
/// campaigning on a thread of its own; see [`crate::cluster::Cluster::campaign`].
pub(super) fn campaign(
    config: postgres::Config,
    role: &str,
    on: OnLeadership,
    stop: Arc<AtomicBool>,
) -> std::io::Result<bool> {
    let role = role.to_owned();
    let mut client = connect(&config, "webcare-leader").ok();
    let mut leading = match client.as_mut().map(|c| try_lock(c, &role)) {
        Some(Ok(got)) => got,
        Some(Err(_)) => {
            client = None;
            false
        }
        None => false,
    };
    let first = leading;
    std::thread::Builder::new()
        .name("webcare-pg-leader".into())
        .spawn(move || {
            loop {
                let pause = if leading {
                    Duration::from_secs(1)
                } else {
                    LEADER_RETRY
                };
                if nap(pause, &stop) {
                    // The lock goes with the session.
                    if leading {
                        on(false);
                    }
                    return;
                }
                let Some(c) = client.as_mut() else {
                    client = connect(&config, "webcare-leader").ok();
                    if client.is_none() && leading {
                        leading = false;
                        on(false);
                    }
                    continue;
                };
                if leading {
                    if let Err(error) = c.is_valid(ALIVE_TIMEOUT) {
                        tracing::warn!(%error, %role, "cluster: lost the database connection; no longer leading");
                        leading = false;
                        client = None;
                        on(false);
                    }
                    continue;
                }
                match try_lock(c, &role) {
                    Ok(true) => {
                        leading = true;
                        on(true);
                    }
                    Ok(false) => {}
                    Err(_) => client = None,
                }
            }
        })?;
    Ok(first)
}

fn try_lock(client: &mut Client, role: &str) -> Result<bool, postgres::Error> {
    let row = client.query_one(
        "SELECT pg_try_advisory_lock($1, hashtext($2))",
        &[&ROLE_KEY, &role],
    )?;
    row.try_get(0)
}
