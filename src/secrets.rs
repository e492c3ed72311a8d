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
