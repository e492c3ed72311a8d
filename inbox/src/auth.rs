//! Who is asking: passwords, API tokens, browser sessions, CSRF tokens and the login rate
//! limit. It exists so every page and API handler gets one [`Actor`] (or a 401/403/429) from
//! one place, and no handler compares secrets itself.
//!
//! - **Passwords** are argon2id PHC strings in the store; verifying one is deliberately slow,
//!   so it runs on the blocking pool. Every attempt is counted *before* the password is
//!   checked (one lock for check and count), so parallel guesses cannot slip past the limit;
//!   a success takes its own attempt back. The limit holds per login *at one client address*
//!   and per client address (429 with `Retry-After`), on the injected clock: an attacker who
//!   guesses at `anna` from one address blocks only that address, never Anna at her own, so
//!   nobody can lock a colleague out by failing on purpose.
//! - **API tokens** (`wct_…`, 256 random bits) are stored as their SHA-256: a token is not
//!   guessable, so a fast hash is enough and a lookup is one key.
//! - **Sessions** live in memory (a restart logs everyone out, which is a fair price for not
//!   keeping live credentials on disk). On PostgreSQL, where several instances serve one inbox
//!   behind a load balancer, they live in the database instead ([`Cluster`]: only the cookie's
//!   SHA-256 is stored, never the cookie), and so do the counts of the login limit: a browser
//!   that reaches another instance stays logged in, a logout ends the session on all of them,
//!   and guesses spread over the instances count together. The cookie is `HttpOnly`, `SameSite=Strict` and, behind
//!   TLS, `Secure`; each session has its own CSRF token that every form posts back. A session
//!   remembers a [`user_stamp`] of the user it was opened for (password hash, role, teams,
//!   creation time) and ends when the stored user no longer matches it: a new password, a new
//!   role, a removal (and a later re-add) all end the old sessions, whichever process changed
//!   the store.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use webcare_engine::cluster::{Cluster, SharedSession};
use webcare_engine::store::User;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("the password is empty")]
    EmptyPassword,
    #[error(
        "the password is too short: use at least {MIN_PASSWORD} characters (a passphrase of a few words is easiest)"
    )]
    WeakPassword,
}

/// The shortest password `webcare user add` and the admin API accept.
pub const MIN_PASSWORD: usize = 12;

/// Refuses passwords a guesser could find: shorter than [`MIN_PASSWORD`] characters, or one
/// character repeated.
pub fn check_password(password: &str) -> Result<(), AuthError> {
    if password.is_empty() {
        return Err(AuthError::EmptyPassword);
    }
    let mut chars = password.chars();
    let first = chars.next();
    if password.chars().count() < MIN_PASSWORD || chars.all(|c| Some(c) == first) {
        return Err(AuthError::WeakPassword);
    }
    Ok(())
}

/// What a session was opened for; a session whose user no longer has this stamp is over.
pub fn user_stamp(user: &User) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in [
        user.login.as_str(),
        user.password_hash.as_str(),
        user.role.as_str(),
        &user.teams.join("\u{1f}"),
        &user.created_at.to_rfc3339(),
    ] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().into()
}

/// The argon2id PHC string of `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.is_empty() {
        return Err(AuthError::EmptyPassword);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string (constant time inside argon2).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// `bytes` random bytes as hex, from the operating system.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new API token: shown once, stored only as [`token_digest`].
pub fn new_api_token() -> String {
    format!("wct_{}", random_hex(32))
}

pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The person behind a request, as the store knows them.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    /// The session's CSRF token; `None` for API token requests (no cookies, so no CSRF).
    pub csrf: Option<String>,
    /// The language they chose for the pages (kept in the store, so it follows them to any
    /// browser); `None` until they choose, or for API requests.
    pub lang: Option<crate::text::Lang>,
    /// The SHA-256 of the browser session's cookie, what a refused action is kept under
    /// ([`crate::kept`]); `None` for API token requests.
    pub session: Option<[u8; 32]>,
}

#[derive(Debug, Clone)]
struct Session {
    login: String,
    csrf: String,
    expires: DateTime<Utc>,
    /// The [`user_stamp`] of the user at login.
    stamp: [u8; 32],
}

/// The live browser sessions, by the SHA-256 of their cookie value (a memory dump shows no
/// usable cookie): in memory, or in the shared store of several instances.
#[derive(Default)]
pub struct Sessions {
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
    shared: Option<Arc<dyn Cluster>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// Runs a database call of the shared sessions or limits from a request handler: on the
/// multi-threaded runtime of `webcare run` the worker thread is handed over for the call, so
/// other tasks keep running (the handlers call these synchronously; a round trip on a local
/// network takes about a millisecond).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl Sessions {
    /// Sessions kept in `cluster`'s database, shared by every instance on it.
    pub fn shared(cluster: Arc<dyn Cluster>) -> Self {
        Sessions {
            shared: Some(cluster),
            ..Sessions::default()
        }
    }

    /// Opens a session for `user`; returns the cookie value and the CSRF token.
    pub fn open(&self, user: &User, now: DateTime<Utc>, ttl: Duration) -> (String, String) {
        let cookie = random_hex(32);
        let csrf = random_hex(16);
        if let Some(cluster) = &self.shared {
            let session = SharedSession {
                login: user.login.clone(),
                csrf: csrf.clone(),
                expires: now + ttl,
                stamp: user_stamp(user),
            };
            // Should the database fail, the cookie leads back to the login page.
            if let Err(error) = blocking(|| cluster.session_open(token_digest(&cookie), &session)) {
                tracing::error!(%error, "inbox: cannot store the new session");
            }
            return (cookie, csrf);
        }
        let mut sessions = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
        // Expired sessions go when a new one is opened: no timer needed, memory stays bounded
        // by the sessions opened within one lifetime.
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(
            token_digest(&cookie),
            Session {
                login: user.login.clone(),
                csrf: csrf.clone(),
                expires: now + ttl,
                stamp: user_stamp(user),
            },
        );
        (cookie, csrf)
    }

    /// The login and CSRF token of a live session.
    pub fn get(&self, cookie: &str, now: DateTime<Utc>) -> Option<(String, String)> {
        if let Some(cluster) = &self.shared {
            return match blocking(|| cluster.session(token_digest(cookie), now)) {
                Ok(session) => session.map(|s| (s.login, s.csrf)),
                Err(error) => {
                    tracing::warn!(%error, "inbox: cannot read the session");
                    None
                }
            };
        }
        let sessions = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .get(&token_digest(cookie))
            .filter(|s| s.expires > now)
            .map(|s| (s.login.clone(), s.csrf.clone()))
    }

    /// Whether the session still belongs to `user` as stored now; ends it when not.
    pub fn still_valid(&self, cookie: &str, user: &User) -> bool {
        if let Some(cluster) = &self.shared {
            let digest = token_digest(cookie);
            // Expiry was checked by `get` on the service's clock; here only who it belongs to.
            let session = blocking(|| cluster.session(digest, DateTime::<Utc>::UNIX_EPOCH));
            let valid = matches!(&session, Ok(Some(s)) if s.login == user.login && s.stamp == user_stamp(user));
            if !valid && matches!(session, Ok(Some(_))) {
                let _ = blocking(|| cluster.session_close(digest));
            }
            return valid;
        }
        let mut sessions = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
        let digest = token_digest(cookie);
        let valid = sessions
            .get(&digest)
            .is_some_and(|s| s.login == user.login && s.stamp == user_stamp(user));
        if !valid {
            sessions.remove(&digest);
        }
        valid
    }

    pub fn close(&self, cookie: &str) {
        if let Some(cluster) = &self.shared {
            if let Err(error) = blocking(|| cluster.session_close(token_digest(cookie))) {
                tracing::warn!(%error, "inbox: cannot end the session");
            }
            return;
        }
        let mut sessions = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
        sessions.remove(&token_digest(cookie));
    }
}

/// Failed logins in a sliding window, per key (`login:anna`, `ip:10.0.0.1`): in memory, or
/// (for [`LoginLimiter::attempt`], [`LoginLimiter::attempt_succeeded`] and
/// [`LoginLimiter::give_back`], what the service uses) in the shared store of several
/// instances.
pub struct LoginLimiter {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<DateTime<Utc>>>>,
    shared: Option<Arc<dyn Cluster>>,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl LoginLimiter {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        LoginLimiter {
            max_failures: max_failures.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Counts in `cluster`'s database (when there is one), so the limit holds over every
    /// instance.
    pub fn shared_by(mut self, cluster: Option<Arc<dyn Cluster>>) -> Self {
        self.shared = cluster;
        self
    }

    /// `Some(wait)` when any of `keys` has used up its failures in the window.
    pub fn blocked(&self, keys: &[&str], now: DateTime<Utc>) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for key in keys {
            let Some(times) = failures.get_mut(*key) else {
                continue;
            };
            while times.front().is_some_and(|t| *t + self.window <= now) {
                times.pop_front();
            }
            if times.len() >= self.max_failures
                && let Some(oldest) = times.front()
            {
                let until = *oldest + self.window - now;
                wait = Some(wait.map_or(until, |w: Duration| w.max(until)));
            }
        }
        wait
    }

    /// Counts an attempt for every key, unless one of them is out of attempts: then nothing is
    /// counted and `Err(wait)` says how long. Check and count happen under one lock, so
    /// parallel attempts cannot all pass the check first.
    pub fn attempt(&self, keys: &[&str], now: DateTime<Utc>) -> Result<(), Duration> {
        if let Some(cluster) = &self.shared {
            return match blocking(|| {
                cluster.limit_attempt(keys, now, self.max_failures, self.window)
            }) {
                Ok(outcome) => outcome,
                // The login that follows needs the same database and answers 503 itself.
                Err(error) => {
                    tracing::warn!(%error, "inbox: cannot count the login attempt");
                    Ok(())
                }
            };
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, times| times.back().is_some_and(|t| *t + self.window > now));
        }
        let mut wait: Option<Duration> = None;
        for key in keys {
            let Some(times) = failures.get_mut(*key) else {
                continue;
            };
            while times.front().is_some_and(|t| *t + self.window <= now) {
                times.pop_front();
            }
            if times.len() >= self.max_failures
                && let Some(oldest) = times.front()
            {
                let until = *oldest + self.window - now;
                wait = Some(wait.map_or(until, |w| w.max(until)));
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        for key in keys {
            failures
                .entry((*key).to_owned())
                .or_default()
                .push_back(now);
        }
        Ok(())
    }

    /// A counted attempt succeeded: the login's failures are forgotten and the address gets
    /// its attempt back.
    pub fn attempt_succeeded(&self, login_key: &str, addr_key: &str) {
        if let Some(cluster) = &self.shared {
            let _ = blocking(|| {
                cluster
                    .limit_forget(login_key, true)
                    .and_then(|()| cluster.limit_forget(addr_key, false))
            });
            return;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(login_key);
        if let Some(times) = failures.get_mut(addr_key) {
            times.pop_back();
        }
    }

    /// Takes back the latest attempt counted for `key` (the request was not a failure).
    pub fn give_back(&self, key: &str) {
        if let Some(cluster) = &self.shared {
            let _ = blocking(|| cluster.limit_forget(key, false));
            return;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(times) = failures.get_mut(key) {
            times.pop_back();
        }
    }

    pub fn failed(&self, keys: &[&str], now: DateTime<Utc>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded memory under a password-spraying attack: forget the quiet keys first.
        if failures.len() > 100_000 {
            failures.retain(|_, times| times.back().is_some_and(|t| *t + self.window > now));
        }
        for key in keys {
            failures
                .entry((*key).to_owned())
                .or_default()
                .push_back(now);
        }
    }

    pub fn succeeded(&self, login_key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(login_key);
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse").unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("x", "not a hash"));
        assert!(hash_password("").is_err());
    }

    #[test]
    fn attempts_are_counted_before_the_check() {
        let limiter = LoginLimiter::new(3, Duration::minutes(15));
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let passed = (0..40)
            .filter(|_| limiter.attempt(&["login:a@x", "ip:x"], t0).is_ok())
            .count();
        assert_eq!(passed, 3);
        assert!(limiter.attempt(&["login:a@y", "ip:y"], t0).is_ok());
        limiter.attempt_succeeded("login:a@y", "ip:y");
        assert!(check_password("short").is_err());
        assert!(check_password("aaaaaaaaaaaaaaaa").is_err());
        assert!(check_password("correct horse battery").is_ok());
    }

    #[test]
    fn the_limiter_blocks_after_the_failures_and_forgets_after_the_window() {
        let limiter = LoginLimiter::new(3, Duration::minutes(15));
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        for i in 0..3 {
            assert_eq!(
                limiter.blocked(&["login:a"], t0 + Duration::minutes(i)),
                None
            );
            limiter.failed(&["login:a", "ip:x"], t0 + Duration::minutes(i));
        }
        assert_eq!(
            limiter.blocked(&["login:a"], t0 + Duration::minutes(3)),
            Some(Duration::minutes(12))
        );
        assert!(
            limiter.blocked(&["login:b", "ip:x"], t0).is_some(),
            "per address too"
        );
        assert_eq!(
            limiter.blocked(&["login:a"], t0 + Duration::minutes(16)),
            None
        );
    }

    #[test]
    fn sessions_cookies_and_secrets() {
        let sessions = Sessions::default();
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut anna = User {
            login: "anna".into(),
            name: "Anna".into(),
            role: webcare_engine::store::Role::Agent,
            teams: vec!["webcare".into()],
            password_hash: "$argon2id$one".into(),
            created_at: t0,
        };
        let (cookie_value, _) = sessions.open(&anna, t0, Duration::hours(8));
        assert!(sessions.still_valid(&cookie_value, &anna));
        anna.password_hash = "$argon2id$two".into();
        assert!(!sessions.still_valid(&cookie_value, &anna));
        assert_eq!(sessions.get(&cookie_value, t0), None, "ended for good");
        let (cookie_value, csrf) = sessions.open(&anna, t0, Duration::hours(8));
        assert_eq!(
            sessions.get(&cookie_value, t0),
            Some(("anna".to_owned(), csrf.clone()))
        );
        assert_eq!(sessions.get(&cookie_value, t0 + Duration::hours(9)), None);
        sessions.close(&cookie_value);
        assert_eq!(sessions.get(&cookie_value, t0), None);
        assert_eq!(
            cookie("a=1; webcare_session=xyz", "webcare_session"),
            Some("xyz")
        );
        assert!(new_api_token().starts_with("wct_"));
    }
}
