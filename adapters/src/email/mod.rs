//! E-mail: citizens write to the organisation's address; webcare reads the mailbox over IMAP
//! and answers in the same thread over SMTP.
//!
//! Intake keeps one IMAP session in IDLE, so a new mail arrives at once instead of at the next
//! poll, and re-issues IDLE before servers drop it (RFC 2177 allows them to after 29 minutes;
//! the keepalives some servers send do not count, so the re-issue is on our own timer). Which
//! mails were taken in is the pair (UIDVALIDITY, last UID), kept in a small state file and
//! moved past a mail only after the [`Gateway`] stored it durably: a crash before the move
//! fetches the mail again and intake's dedupe by Message-ID answers it once; a changed
//! UIDVALIDITY (a mailbox recreated) starts over, and the same dedupe keeps that from
//! repeating a decision. Mails are read with `BODY.PEEK[]`, so the mailbox's \Seen flags stay
//! the team's.
//!
//! A thread is one conversation: it is named by its first mail's Message-ID (the first of
//! `References`, else `In-Reply-To`, else the mail's own), and replies carry `In-Reply-To` and
//! `References` so the customer's mail program keeps them in that thread.
//!
//! # Layout
//!
//! - `parse.rs`: which mails are decided, their thread, and the words a person wrote.
//! - `deliver.rs`: [`EmailDeliver`], SMTP replies with lettre.

mod body;
mod deliver;
pub mod parse;

use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_imap::Client;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

pub use deliver::EmailDeliver;

use crate::gateway::Gateway;
use crate::secret::Secret;

/// How a connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (IMAP 993, SMTP 465).
    Tls,
    /// Plain, upgraded with STARTTLS (SMTP 587 only).
    Starttls,
    /// No encryption: only for a server on the same machine (and the tests).
    None,
}

/// One server.
#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub security: Security,
}

/// The adapter's settings, built from `[email]` and the environment.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// The organisation's address: replies come from it, and mail from it is never decided.
    pub address: String,
    pub imap: Server,
    pub smtp: Server,
    pub username: String,
    pub password: Secret,
    /// SMTP login when it differs from the IMAP one; `None` with no password: no SMTP login.
    pub smtp_login: Option<(String, Secret)>,
    pub mailbox: String,
    /// Where (UIDVALIDITY, last UID) is kept.
    pub state_file: PathBuf,
    /// A PEM file of CA certificates to trust besides the public roots, for IMAP and SMTP over
    /// TLS: a mail server with a certificate of the organisation's own CA.
    pub ca_file: Option<PathBuf>,
    /// IDLE is ended and issued again after this long: shorter than the server's inactivity
    /// timeout (RFC 2177: servers may end an IDLE after 29 minutes).
    pub idle_renew: Duration,
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
}

impl EmailConfig {
    /// The domain of [`EmailConfig::address`], for Message-IDs.
    pub fn domain(&self) -> &str {
        self.address.rsplit('@').next().unwrap_or("webcare.invalid")
    }
}

/// Why the e-mail adapter stopped or a session ended.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("cannot reach the IMAP server {host}:{port}: {reason}")]
    Connect {
        host: String,
        port: u16,
        reason: String,
    },
    #[error("IMAP: {0}")]
    Imap(String),
    #[error("the IMAP server refused the login of `{0}` (check EMAIL_PASSWORD)")]
    Login(String),
    #[error("cannot keep the mailbox position in `{path}`: {reason}")]
    State { path: String, reason: String },
    #[error("intake failed: {0}")]
    Intake(String),
    #[error("the SMTP settings are not usable: {0}")]
    Smtp(String),
    #[error("cannot use the CA certificates in `{path}` ([email] ca_file): {reason}")]
    Ca { path: String, reason: String },
}

/// The PEM certificates of `path`, refused when there is none: a CA file that trusts nothing
/// is a mistake to say at start, not a TLS failure to retry forever.
pub fn read_ca_file(
    path: &std::path::Path,
) -> Result<Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>, EmailError> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;

    let ca_error = |reason: String| EmailError::Ca {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(ca_error("no `BEGIN CERTIFICATE` block in it".into()));
    }
    Ok(certificates)
}

/// The roots an IMAP connection over TLS trusts: Mozilla's, and those of `[email] ca_file`.
fn tls_roots(config: &EmailConfig) -> Result<tokio_rustls::rustls::RootCertStore, EmailError> {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &config.ca_file {
        for certificate in read_ca_file(path)? {
            roots.add(certificate).map_err(|e| EmailError::Ca {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(roots)
}

impl From<async_imap::error::Error> for EmailError {
    fn from(error: async_imap::error::Error) -> Self {
        EmailError::Imap(error.to_string())
    }
}

/// Which mails of the mailbox were taken in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub uid_validity: u32,
    pub last_uid: u32,
}

impl Position {
    /// The position kept in `path`; the start when there is none yet.
    pub async fn load(path: &std::path::Path) -> Result<Position, EmailError> {
        let file = path.to_owned();
        let read = tokio::task::spawn_blocking(move || std::fs::read(file))
            .await
            .map_err(|e| state_error(path, e))?;
        match read {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| state_error(path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Position::default()),
            Err(e) => Err(state_error(path, e)),
        }
    }

    /// Writes the position durably: a temp file, synced, renamed over the old one.
    pub async fn save(&self, path: &std::path::Path) -> Result<(), EmailError> {
        let bytes = serde_json::to_vec(self).map_err(|e| state_error(path, e))?;
        let shown = path.to_owned();
        let (path, tmp) = (path.to_owned(), path.with_extension("tmp"));
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut file, &bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(|e| EmailError::Intake(e.to_string()))?
        .map_err(|e| state_error(&shown, e))
    }
}

fn state_error(path: &std::path::Path, e: impl std::fmt::Display) -> EmailError {
    EmailError::State {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Reads the mailbox and takes each new mail in through `gateway` until `shutdown`
/// completes; a lost connection is opened again with backoff.
pub async fn run(
    gateway: Gateway,
    config: EmailConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), EmailError> {
    tokio::pin!(shutdown);
    let mut wait = config.retry_delay;
    loop {
        match session(&gateway, &config, &mut shutdown).await {
            Ok(()) => return Ok(()),
            // A refused login or an unusable CA file needs a person; retrying cannot fix it.
            Err(error @ (EmailError::Login(_) | EmailError::Ca { .. })) => return Err(error),
            Err(error) => {
                warn!(%error, retry_in = ?wait, "email: the IMAP session ended");
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(config.max_retry_delay);
            }
        }
    }
}

/// One IMAP session; `Ok` when `shutdown` ended it.
async fn session(
    gateway: &Gateway,
    config: &EmailConfig,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<(), EmailError> {
    let server = &config.imap;
    let connect_error = |reason: String| EmailError::Connect {
        host: server.host.clone(),
        port: server.port,
        reason,
    };
    let tcp = TcpStream::connect((server.host.as_str(), server.port))
        .await
        .map_err(|e| connect_error(e.to_string()))?;
    match server.security {
        Security::None | Security::Starttls => {
            mailbox(Client::new(tcp), gateway, config, shutdown).await
        }
        Security::Tls => {
            let tls = tokio_rustls::rustls::ClientConfig::builder()
                .with_root_certificates(tls_roots(config)?)
                .with_no_client_auth();
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(server.host.clone())
                .map_err(|e| connect_error(e.to_string()))?;
            let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
                .connect(name, tcp)
                .await
                .map_err(|e| connect_error(e.to_string()))?;
            mailbox(Client::new(stream), gateway, config, shutdown).await
        }
    }
}

async fn mailbox<T>(
    mut client: Client<T>,
    gateway: &Gateway,
    config: &EmailConfig,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<(), EmailError>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    client
        .read_response()
        .await
        .map_err(|e| EmailError::Imap(format!("no greeting: {e}")))?;
    let mut session = client
        .login(&config.username, config.password.expose())
        .await
        .map_err(|(e, _)| match e {
            async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_) => {
                EmailError::Login(config.username.clone())
            }
            other => EmailError::Imap(other.to_string()),
        })?;
    let selected = session.select(&config.mailbox).await?;
    let validity = selected.uid_validity.unwrap_or_default();
    let mut position = Position::load(&config.state_file).await?;
    if position.uid_validity != validity {
        if position != Position::default() {
            warn!(
                was = position.uid_validity,
                now = validity,
                "email: UIDVALIDITY changed; reading the mailbox from the start (mails taken in before are recognised by Message-ID)"
            );
        }
        position = Position {
            uid_validity: validity,
            last_uid: 0,
        };
    }
    info!(mailbox = %config.mailbox, uid_validity = validity, after_uid = position.last_uid, "email: reading the mailbox");
    loop {
        take_new(&mut session, gateway, config, &mut position).await?;
        // A mail that arrived while a command ran is announced during that command, where
        // IDLE never sees it: look again at once instead of idling past it.
        if announced_new_mail(&session) {
            continue;
        }
        let mut idle = session.idle();
        idle.init().await?;
        let stopped = {
            // The library's own timeout restarts at every keepalive, so the renewal is ours.
            let (wait, _stop) = idle.wait_with_timeout(config.idle_renew * 2);
            tokio::select! {
                result = tokio::time::timeout(config.idle_renew, wait) => {
                    if let Ok(result) = result {
                        result?;
                    }
                    false
                }
                () = shutdown.as_mut() => true,
            }
        };
        session = idle.done().await?;
        if stopped {
            let _ = session.logout().await;
            info!("email: stopped reading the mailbox");
            return Ok(());
        }
    }
}

/// Whether the server announced new mail outside IDLE (drains the announcements).
fn announced_new_mail<T>(session: &async_imap::Session<T>) -> bool
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    use async_imap::types::UnsolicitedResponse;

    let mut new = false;
    while let Ok(response) = session.unsolicited_responses.try_recv() {
        new |= matches!(
            response,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    new
}

/// Takes in every mail after the position, in UID order, moving the position past each once
/// it is stored (or deliberately skipped).
async fn take_new<T>(
    session: &mut async_imap::Session<T>,
    gateway: &Gateway,
    config: &EmailConfig,
    position: &mut Position,
) -> Result<(), EmailError>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    use futures_util::TryStreamExt;

    let found = session
        .uid_search(format!("UID {}:*", position.last_uid.saturating_add(1)))
        .await?;
    // `n:*` always names the last mail, also when its UID is below n.
    let mut uids: Vec<u32> = found
        .into_iter()
        .filter(|u| *u > position.last_uid)
        .collect();
    uids.sort_unstable();
    for uid in uids {
        let fetched: Vec<_> = session
            .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
            .await?
            .try_collect()
            .await?;
        let Some(body) = fetched.iter().find_map(|f| f.body().map(<[u8]>::to_vec)) else {
            warn!(uid, "email: the server sent no body; skipped");
            continue;
        };
        let fallback = format!("{}.{uid}@imap.invalid", position.uid_validity);
        match parse::to_inbound(&body, &config.address, &fallback) {
            Ok(inbound) => {
                let id = inbound.id.clone();
                let receipt = gateway
                    .accept(inbound)
                    .await
                    .map_err(|e| EmailError::Intake(e.to_string()))?;
                debug!(uid, message = %id, duplicate = receipt.duplicate, action = ?receipt.decision.action, "email: mail taken in");
            }
            Err(skip) => info!(uid, reason = %skip, "email: mail ignored"),
        }
        position.last_uid = uid;
        position.save(&config.state_file).await?;
    }
    Ok(())
}
