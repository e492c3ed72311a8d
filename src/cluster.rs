//! `webcare run` as one of several instances on one PostgreSQL store (see
//! `webcare_engine::cluster`): it follows the rulebook and crisis switch the others put in
//! force, and campaigns to be the one instance that runs Telegram long polling, the Discord
//! gateway and the SLA timer (one is enough: the store hands each announcement to a team and
//! each breach to one taker, so a timer that takes over catches up without repeating). A
//! module of its own so the service only asks "is there a cluster" once and the channels only
//! see a leadership signal; with an embedded store none of this runs.
//!
//! Following: a signal from another instance (or a reconnect of the listener) makes this
//! instance read the shared state at once, and it also does so every [`RECHECK`] in case a
//! signal was lost. A rulebook another instance activated is read from the store (its files are
//! kept there with every activation) and compiled here; it was checked and tested where it was
//! activated. The last activation wins, so every decision names the version in force on the
//! instance that made it, and they all converge within a second.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use webcare_adapters::gateway::Gateway;
use webcare_engine::cluster::Signal;
use webcare_engine::{Rulebook, RulebookSource, Runtime};

use crate::shutdown::Shutdown;

/// How often the shared state is read even without a signal.
const RECHECK: Duration = Duration::from_secs(5);

/// The leader role of the platforms that must run once: Telegram polling, Discord gateway.
const PLATFORMS: &str = "platforms";

/// What the rest of the service gets from the cluster.
pub struct Coordination {
    /// `true` while this instance leads the platforms.
    pub leader: watch::Receiver<bool>,
    /// The line that says whether this instance leads or waits.
    pub line: String,
}

/// Starts following the other instances and campaigning for the platforms; `None` when the
/// store is embedded (one process, nothing to coordinate).
pub async fn start(
    gateway: &Gateway,
    tasks: &mut JoinSet<()>,
    shutdown: &Shutdown,
) -> anyhow::Result<Option<Coordination>> {
    let runtime = gateway.runtime();
    let Some(cluster) = runtime.store().cluster() else {
        return Ok(None);
    };
    let (wake, woken) = mpsc::unbounded_channel();
    let escalations = Arc::clone(gateway.escalation_signal());
    cluster.subscribe(Box::new(move |received| {
        if received.own {
            return;
        }
        match received.signal {
            Signal::Rulebook { .. } | Signal::Crisis => {
                let _ = wake.send(());
            }
            // An escalation another instance took in or changed: the SLA timer (which runs on
            // the leader) tells its team at once rather than at its next poll.
            Signal::Inbox { .. } => escalations.notify_one(),
            Signal::Resync => {
                let _ = wake.send(());
                escalations.notify_one();
            }
            Signal::Access { .. } | Signal::Webchat { .. } => {}
        }
    }));
    tasks.spawn(follow(Arc::clone(runtime), woken, shutdown.wait()));

    let (tell, leader) = watch::channel(false);
    let tell = Arc::new(tell);
    let told = Arc::clone(&tell);
    let campaigner = Arc::clone(&cluster);
    let leads = tokio::task::spawn_blocking(move || {
        campaigner.campaign(
            PLATFORMS,
            Box::new(move |leading| {
                told.send_replace(leading);
                if leading {
                    tracing::warn!("cluster: this instance now leads Telegram polling and the Discord gateway");
                } else {
                    tracing::warn!("cluster: this instance no longer leads Telegram polling and the Discord gateway");
                }
            }),
        )
    })
    .await??;
    // The campaign's first answer; its thread reports changes only after its first pause.
    tell.send_replace(leads);
    let line = if leads {
        format!(
            "cluster: instance {} leads (runs Telegram polling and the Discord gateway)",
            cluster.instance()
        )
    } else {
        format!(
            "cluster: instance {} waits (another instance runs Telegram polling and the Discord gateway; this one takes over within 15 s when it stops)",
            cluster.instance()
        )
    };
    Ok(Some(Coordination { leader, line }))
}

/// Reads the shared state on every wake-up and every [`RECHECK`], until `stop`.
async fn follow(
    runtime: Arc<Runtime>,
    mut woken: mpsc::UnboundedReceiver<()>,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(RECHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return,
            woke = woken.recv() => if woke.is_none() { return },
            _ = tick.tick() => {}
        }
        let runtime = Arc::clone(&runtime);
        let followed = tokio::task::spawn_blocking(move || catch_up(&runtime)).await;
        match followed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "cluster: cannot read the shared state; will try again")
            }
            Err(error) => tracing::error!(%error, "cluster: following the shared state stopped"),
        }
    }
}

/// Puts the rulebook activated last and the stored crisis switch in force here, when they
/// differ from what runs.
fn catch_up(runtime: &Runtime) -> anyhow::Result<()> {
    let Some(cluster) = runtime.store().cluster() else {
        return Ok(());
    };
    let state = cluster.state()?;
    if let Some(version) = state.rulebook
        && version != runtime.rulebook().version
    {
        let files = runtime.store().rulebook_version(&version)?.ok_or_else(|| {
            anyhow::anyhow!("rulebook {version} was activated but its files are not in the store")
        })?;
        let rulebook = RulebookSource::from_files(&files)
            .and_then(Rulebook::compile)
            .map_err(|errors| {
                anyhow::anyhow!("rulebook {version} from the store does not compile here: {errors}")
            })?;
        if rulebook.version != version {
            anyhow::bail!(
                "rulebook {version} from the store compiles to version {} here (another webcare release?); the running one stays",
                rulebook.version
            );
        }
        let previous = runtime.replace_rulebook(rulebook);
        tracing::warn!(%version, previous = %previous.version, "cluster: rulebook activated by another instance is in force here");
    }
    if state.crisis != runtime.crisis_override() {
        runtime.set_crisis_override(state.crisis);
        tracing::warn!(
            crisis_mode = runtime.crisis_mode(),
            "cluster: crisis switch set by another instance"
        );
    }
    Ok(())
}

/// What a led platform's loop is given to stop on: the service's shutdown, or this instance
/// losing the lead.
pub type Stop = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `run` on `tasks` while this instance leads (always, without a cluster): started when it
/// becomes the leader, stopped when it no longer is, until shutdown. `name` is for the log.
pub fn spawn_led<F, Fut>(
    tasks: &mut JoinSet<()>,
    leader: Option<watch::Receiver<bool>>,
    shutdown: &Shutdown,
    name: &'static str,
    run: F,
) where
    F: Fn(Stop) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let shutdown = shutdown.clone();
    let Some(mut leader) = leader else {
        tasks.spawn(run(Box::pin(shutdown.wait())));
        return;
    };
    tasks.spawn(async move {
        let stopped = shutdown.wait();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => return,
                led = leader.wait_for(|leads| *leads) => if led.is_err() { return },
            }
            tracing::info!("{name}: starting on this instance (it leads)");
            let mut lost = leader.clone();
            let end = shutdown.wait();
            let stop: Stop = Box::pin(async move {
                tokio::select! {
                    () = end => {}
                    _ = lost.wait_for(|leads| !*leads) => {}
                }
            });
            run(stop).await;
            // Ended by itself (an error it could not get past) or by the lost lead: pause, so
            // a platform that refuses at once is not asked again in a tight loop.
            tokio::select! {
                () = &mut stopped => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
}
