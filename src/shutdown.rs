//! How `webcare run` stops: one [`Trigger`] the service fires once, and a [`Shutdown`] every part
//! holds and waits on (the web server, the channels, the timers, the outbox worker), as in
//! mini-redis. It is a module of its own so the parts that wait on it (`channels`, `inbox`)
//! need not import the service that fires it; `service` decides the order they stop in.

use std::future::Future;

use tokio::sync::watch;

/// Fires the shutdown, once; every [`Shutdown`] made with it completes.
pub struct Trigger(watch::Sender<bool>);

/// A shutdown signal every part can wait on; cheap to clone.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A trigger and the signal it fires.
pub fn channel() -> (Trigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (Trigger(sender), Shutdown(receiver))
}

impl Trigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// Completes once shutdown was asked for.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.0.clone();
        async move {
            // An error means the trigger is gone: that is a shutdown too.
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn signals() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_waiter_sees_the_one_trigger() {
        let (trigger, shutdown) = channel();
        let first = tokio::spawn(shutdown.wait());
        let second = tokio::spawn(shutdown.clone().wait());
        trigger.fire();
        assert!(first.await.is_ok() && second.await.is_ok());
        // A part that starts waiting later does not miss it.
        shutdown.wait().await;
    }
}
