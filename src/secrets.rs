//! Tokens (the bots', the admin API's, Telegram's webhook secret) come from the environment or a
//! file, never from `webcare.toml`, where they would end up in backups and version control. One
//! reader for them, in a module of its own because the channels, the service and the admin
//! commands all need it and none of them should import another for it. (The HTTP channel's
//! signing secret follows the same rules in `channels/http.rs`.)

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use webcare_adapters::secret::Secret;

/// The secret from `variable`, else from `<variable>_FILE` or the section's `*_file` key
/// (relative to `base`); `None` when none is set. A file that is named but cannot be read, or
/// is empty, is an error: the operator asked for the secret.
pub fn read_secret(
    what: &str,
    variable: &str,
    token_file: Option<&Path>,
    base: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Secret>> {
    if let Some(token) = env(variable).map(Secret::new).filter(|t| !t.is_empty()) {
        return Ok(Some(token));
    }
    let path = env(&format!("{variable}_FILE"))
        .map(PathBuf::from)
        .or_else(|| {
            token_file.map(|p| match base {
                Some(base) if p.is_relative() => base.join(p),
                _ => p.to_owned(),
            })
        });
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the {what} file `{}`", path.display()))?;
    let token = Secret::new(text);
    if token.is_empty() {
        return Err(anyhow!("the {what} file `{}` is empty", path.display()));
    }
    Ok(Some(token))
}

/// The shortest admin token `webcare run` accepts, and how many different characters it needs.
pub const MIN_ADMIN_TOKEN: usize = 16;
const MIN_ADMIN_TOKEN_KINDS: usize = 8;

/// Refuses an admin token that could be guessed: it opens reloads, the crisis switch, reports
/// and user changes, so it must be long and varied (`openssl rand -hex 24` makes a good one).
pub fn check_admin_token(token: &Secret) -> anyhow::Result<()> {
    let text = token.expose();
    let distinct: std::collections::BTreeSet<char> = text.chars().collect();
    if text.chars().count() < MIN_ADMIN_TOKEN || distinct.len() < MIN_ADMIN_TOKEN_KINDS {
        return Err(anyhow!(
            "WEBCARE_ADMIN_TOKEN is too weak: use at least {MIN_ADMIN_TOKEN} characters with at least {MIN_ADMIN_TOKEN_KINDS} different ones, e.g. the output of `openssl rand -hex 24`"
        ));
    }
    Ok(())
}
