//! The web server's accept loop, in place of `axum::serve`, which has no header, body or idle
//! timeouts and no connection cap: a client that opens connections and sends nothing (or one
//! byte a minute) could hold every file descriptor and make the service unreachable, and kept
//! a graceful shutdown waiting until it was killed. Here hyper's own timers do the work (no
//! hand-written timeouts): hyper's header read timeout closes a connection that does not send
//! a complete request head in time, and it also runs while a kept-alive connection waits for
//! its next request, so it is the idle timeout too; tower-http's request body timeout ends a
//! body that stops arriving. A semaphore caps open connections: when it is full the loop stops
//! accepting (clients wait in the kernel's backlog) instead of failing on `Too many open
//! files`. Each connection gets hyper's graceful shutdown when the server stops: idle
//! connections close at once, requests in flight finish, and whatever still hangs after
//! [`Limits::drain`] is dropped, so SIGTERM always ends the server promptly.
//!
//! Only HTTP/1.1 is served (with upgrades for the web chat's WebSocket): a TLS proxy in front
//! speaks it, HTTP/2 over plain TCP would need a second set of limits, and hyper-util's
//! automatic version detection reads the first bytes before hyper's header timer starts, so a
//! silent client would never time out.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// The server's limits; the runtime form of `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The longest a client may take to send a request head, and the longest a kept-alive
    /// connection may wait for its next request.
    pub header_timeout: Duration,
    /// The longest a request body may take to arrive.
    pub body_timeout: Duration,
    /// Open connections (web chat sockets included); more wait to be accepted.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight before it drops them.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 512,
            drain: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then drains (see the module
/// docs). The client's address reaches handlers as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let router = router.layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let http = Arc::new(http);
    let cap = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(cap));
    // Told to every connection at shutdown, so each finishes its request and closes.
    let (closing, closed) = watch::channel(false);
    tokio::pin!(shutdown);

    loop {
        // Wait for a free slot before accepting, so a full server leaves new clients in the
        // backlog instead of running out of file descriptors.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, addr) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before accept: wait a little
                    // instead of spinning on the error.
                    tracing::warn!(%error, "web server: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut request: axum::extract::Request<_>| {
                request.extensions_mut().insert(ConnectInfo(addr));
                request
            });
        let service = TowerToHyperService::new(service);
        let http = Arc::clone(&http);
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let connection = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            let closing = async move {
                let _ = closed.wait_for(|closed| *closed).await;
            };
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = closing => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // Errors here are a client's (a timeout, a reset): nothing to act on.
            if let Err(error) = ended {
                tracing::debug!(%addr, error = %error, "web server: connection ended");
            }
            // A WebSocket leaves hyper when it is upgraded, and so frees its slot; the web
            // chat caps its sockets itself.
            drop(permit);
        });
    }
    drop(listener);
    closing.send_replace(true);
    // Every slot back means every connection ended.
    let drained = tokio::time::timeout(limits.drain, slots.acquire_many(cap as u32)).await;
    if drained.is_err() {
        tracing::warn!(
            "web server: connections still open after {} s of shutdown; closed",
            limits.drain.as_secs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads until the server closes the connection (bounded wait); returns what it sent.
    async fn until_closed(stream: &mut tokio::net::TcpStream) -> Option<String> {
        let mut seen = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), async {
            let mut buf = [0u8; 1024];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        read.ok()
            .map(|()| String::from_utf8_lossy(&seen).into_owned())
    }

    async fn start(limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = Router::new().route(
            "/who",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router, limits, async move {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    fn short() -> Limits {
        Limits {
            header_timeout: Duration::from_millis(300),
            body_timeout: Duration::from_millis(300),
            max_connections: 2,
            drain: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn a_client_that_sends_no_complete_head_is_disconnected() {
        let (addr, _stop) = start(short()).await;
        let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
        assert!(
            until_closed(&mut silent).await.is_some(),
            "silent client kept"
        );
        let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET /who HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        assert!(until_closed(&mut slow).await.is_some(), "slow client kept");
    }

    #[tokio::test]
    async fn a_full_server_serves_the_next_client_once_idle_ones_are_closed() {
        let (addr, _stop) = start(short()).await;
        // Twice the cap of idle connections, then a real request: it is answered (with the
        // client's address) once the idle ones timed out, not refused.
        let mut idle = Vec::new();
        for _ in 0..4 {
            idle.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        }
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        client
            .write_all(b"GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let answer = until_closed(&mut client).await.expect("answered");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("127.0.0.1"), "{answer}");
    }

    #[tokio::test]
    async fn shutdown_ends_slow_connections() {
        let limits = Limits {
            header_timeout: Duration::from_secs(3600),
            ..short()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Router::new(), limits, async move {
            let _ = stopped.await;
        }));
        let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
        let _ = stop.send(());
        let ended = tokio::time::timeout(Duration::from_secs(20), server).await;
        assert!(matches!(ended, Ok(Ok(()))), "the server did not end");
    }
}
