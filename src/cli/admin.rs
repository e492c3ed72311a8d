//! The small HTTP client behind `webcare reload` and `webcare crisis`: they change the running
//! service, so they talk to its admin API (`crate::governance`) instead of opening the store or
//! the rules themselves. One running service owns the rulebook in force and the crisis switch;
//! a second process changing them behind its back would make the audit log lie.
//!
//! The address comes from `--url`, else from `[server] listen` (`WEBCARE_SERVER_LISTEN`), the
//! same setting `webcare run` listens on; the token from `WEBCARE_ADMIN_TOKEN` or
//! `WEBCARE_ADMIN_TOKEN_FILE`, the same variables `webcare run` reads. The token is only ever
//! put in the `Authorization` header: it is never printed, and error messages say which
//! variable to check, not its value.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::StatusCode;
use serde_json::Value;
use webcare_adapters::secret::Secret;

use crate::config::{self, StoreArgs};

/// `--url`, shared by the admin commands.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// The running webcare (`http://127.0.0.1:8080`); default: `[server] listen` of the config
    /// (or `WEBCARE_SERVER_LISTEN`), as `webcare run` uses it.
    #[arg(long, value_name = "URL", global = true)]
    url: Option<String>,
}

/// A connection to one running service's admin API.
pub struct Admin {
    base: String,
    token: Secret,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// One answer of the admin API: its status and JSON body (`Null` when it was not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Admin {
    pub fn connect(store_args: &StoreArgs, args: &AdminArgs) -> anyhow::Result<Admin> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let base = match &args.url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let vars: Vec<(String, String)> = std::env::vars().collect();
                let (file, _) = config::load_with_env(store_args, &vars)?;
                let listen = file.server.listen.as_deref().unwrap_or("127.0.0.1:8080");
                url_of_listen(listen)?
            }
        };
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("`--url {base}`: expected an address like `http://127.0.0.1:8080`");
        }
        let token = token(&env)?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // A reload compiles the rulebook and runs all its golden cases first.
            .timeout(Duration::from_secs(120))
            .build()
            .context("cannot make an HTTP client")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(Admin {
            base,
            token,
            client,
            runtime,
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET` (no body) or `POST` (`Some` body, or `None` with `post`) on `path`, authorised.
    /// Refusals of the token and an unreachable service become errors that say what to do.
    pub fn call(&self, post: bool, path: &str, body: Option<Value>) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base);
        let mut request = if post {
            self.client.post(&url)
        } else {
            self.client.get(&url)
        };
        request = request.bearer_auth(self.token.expose());
        if let Ok(user) = std::env::var("USER")
            && !user.is_empty()
        {
            // Who typed the command, for the audit log; the token is what authorises.
            request = request.header("x-webcare-actor", user);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = self.runtime.block_on(async {
            let response = request.send().await?;
            let status = response.status();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>(Answer {
                status,
                body: serde_json::from_str(&text).unwrap_or(Value::Null),
            })
        });
        let answer = answer.map_err(|e| self.unreachable(e))?;
        let said = answer.body["error"].as_str().unwrap_or("").to_owned();
        match answer.status {
            StatusCode::UNAUTHORIZED => Err(anyhow!(
                "the service at {} refused the admin token ({}); use the WEBCARE_ADMIN_TOKEN (or WEBCARE_ADMIN_TOKEN_FILE) that `webcare run` was started with",
                self.base,
                if said.is_empty() { "401" } else { &said }
            )),
            StatusCode::FORBIDDEN => Err(anyhow!(
                "the admin API of the service at {} is off: start `webcare run` with WEBCARE_ADMIN_TOKEN (or WEBCARE_ADMIN_TOKEN_FILE) set",
                self.base
            )),
            StatusCode::NOT_FOUND => Err(anyhow!(
                "{url} answered 404: is {} a webcare service?",
                self.base
            )),
            _ => Ok(answer),
        }
    }

    fn unreachable(&self, error: reqwest::Error) -> anyhow::Error {
        if error.is_connect() {
            anyhow!(
                "cannot connect to {}: is `webcare run` running at {}? (pass `--url` if it listens elsewhere)",
                self.base,
                self.base
            )
        } else if error.is_timeout() {
            anyhow!("the service at {} did not answer in time", self.base)
        } else {
            // Without the URL's query or credentials: `reqwest` errors name the URL.
            anyhow!(
                "talking to the service at {} failed: {}",
                self.base,
                error.without_url()
            )
        }
    }
}

/// The admin token, from the environment or the file it names, as `webcare run` reads it.
fn token(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Secret> {
    crate::secrets::read_secret("admin token", "WEBCARE_ADMIN_TOKEN", None, None, env)?.ok_or_else(|| {
        anyhow!(
            "no admin token: set WEBCARE_ADMIN_TOKEN (or WEBCARE_ADMIN_TOKEN_FILE) to the token `webcare run` was started with"
        )
    })
}

/// The URL a client on this machine reaches a service on `listen` at: a wildcard address is
/// reached on loopback.
fn url_of_listen(listen: &str) -> anyhow::Result<String> {
    let (host, port) = listen
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("`[server] listen = {listen:?}` has no port; pass `--url`"))?;
    if port == "0" {
        bail!(
            "`[server] listen = {listen:?}` picks a free port at start; pass `--url` with the address `webcare run` printed"
        );
    }
    let host = match host {
        "0.0.0.0" | "" => "127.0.0.1",
        "[::]" => "[::1]",
        other => other,
    };
    Ok(format!("http://{host}:{port}"))
}

/// `webcare backup` while `webcare run` holds the store: the service writes the copy to
/// `target` (absolute) itself.
pub fn backup_via_service(
    store_args: &StoreArgs,
    url: Option<&str>,
    target: &std::path::Path,
) -> anyhow::Result<()> {
    let args = AdminArgs {
        url: url.map(str::to_owned),
    };
    let admin = Admin::connect(store_args, &args)
        .context("the store is in use by `webcare run`; the backup goes through its admin API")?;
    let answer = admin.call(
        true,
        crate::admin_api::BACKUP,
        Some(serde_json::json!({ "target": target })),
    )?;
    if !answer.status.is_success() {
        bail!(
            "the service at {} could not make the backup: {}",
            admin.url(),
            answer.body["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_url_follows_the_listen_address() {
        let url = |l: &str| url_of_listen(l).unwrap_or_else(|e| format!("error: {e}"));
        assert_eq!(url("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(url("0.0.0.0:9000"), "http://127.0.0.1:9000");
        assert_eq!(url("[::]:80"), "http://[::1]:80");
        assert!(url("127.0.0.1:0").contains("pass `--url`"));
        assert!(url("localhost").contains("no port"));
    }

    #[test]
    fn the_token_comes_from_the_variable_or_its_file_and_is_never_shown() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n")?;
        let path = file.display().to_string();
        let env = |name: &str| (name == "WEBCARE_ADMIN_TOKEN_FILE").then(|| path.clone());
        let token = token(&env)?;
        assert_eq!(token.expose(), "from-file");
        assert_eq!(format!("{token:?}"), "***");
        let env = |name: &str| (name == "WEBCARE_ADMIN_TOKEN").then(|| "direct".to_owned());
        assert_eq!(token_of(&env), "direct");
        let none = |_: &str| None;
        assert!(token_of(&none).contains("set WEBCARE_ADMIN_TOKEN"));
        Ok(())
    }

    fn token_of(env: &dyn Fn(&str) -> Option<String>) -> String {
        match token(env) {
            Ok(t) => t.expose().to_owned(),
            Err(e) => e.to_string(),
        }
    }
}
