//! The connection URL of the PostgreSQL store. It usually holds a password, so it is a secret:
//! it comes from `WEBCARE_STORE_URL` or a file (never `webcare.toml`), and everything that
//! prints it (Display, Debug, error messages, logs) shows it with the password replaced.

use std::fmt;

/// A `postgres://` (or `postgresql://`, or key=value) connection string.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl(String);

impl PgUrl {
    pub fn new(url: impl Into<String>) -> Self {
        PgUrl(url.into().trim().to_owned())
    }

    /// The URL with its password, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `text` looks like a PostgreSQL URL (for `webcare migrate --to`).
    pub fn is_url(text: &str) -> bool {
        text.starts_with("postgres://") || text.starts_with("postgresql://")
    }

    /// The URL with the password (and any `password=` parameter) replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let mut out = match url.split_once("://") {
            Some((scheme, rest)) => {
                let (authority, tail) = match rest.find(['/', '?']) {
                    Some(at) => rest.split_at(at),
                    None => (rest, ""),
                };
                let authority = match authority.rsplit_once('@') {
                    Some((userinfo, host)) => match userinfo.split_once(':') {
                        Some((user, _)) => format!("{user}:***@{host}"),
                        None => format!("{userinfo}@{host}"),
                    },
                    None => authority.to_owned(),
                };
                format!("{scheme}://{authority}{tail}")
            }
            None => url.clone(),
        };
        // `password=…` as a query parameter or in key=value form.
        while let Some(at) = out.find("password=") {
            let start = at + "password=".len();
            let end = out[start..]
                .find(['&', ' '])
                .map_or(out.len(), |e| start + e);
            if &out[start..end] == "***" {
                break;
            }
            out.replace_range(start..end, "***");
        }
        out
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.redacted())
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        for (url, shown) in [
            (
                "postgres://webcare:s3cret@db:5432/webcare",
                "postgres://webcare:***@db:5432/webcare",
            ),
            (
                "postgresql://webcare@db/webcare?password=s3cret&sslmode=disable",
                "postgresql://webcare@db/webcare?password=***&sslmode=disable",
            ),
            (
                "host=db user=w password=s3cret dbname=w",
                "host=db user=w password=*** dbname=w",
            ),
            ("postgres://db/webcare", "postgres://db/webcare"),
        ] {
            let url = PgUrl::new(url);
            assert_eq!(url.redacted(), shown);
            assert!(!format!("{url} {url:?}").contains("s3cret"));
        }
    }
}
