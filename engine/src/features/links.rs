//! Web and e-mail addresses in a message's raw text, told apart from a sentence that lacks a
//! space after its full stop (`gedaan.nu`).

/// Top-level domains common enough in Dutch messages that a bare `name.tld` counts as a web
/// address without a path. Others (`.nu`, `.de`, `.me`, `.it`, ...) are also words, and
/// "doe het.nu" is a typo, not a link; with a path (`t.me/x`) they count.
const COMMON_TLDS: [&str; 27] = [
    "nl",
    "com",
    "org",
    "net",
    "eu",
    "be",
    "info",
    "biz",
    "io",
    "ly",
    "co",
    "uk",
    "fr",
    "es",
    "pl",
    "tr",
    "ua",
    "shop",
    "online",
    "site",
    "store",
    "xyz",
    "top",
    "app",
    "gov",
    "frl",
    "amsterdam",
];

pub(super) fn is_url(t: &str) -> bool {
    let b = t.as_bytes();
    // Tokens are short: a plain byte loop beats the set-up of a substring search.
    if let Some(p) = b.iter().position(|&c| c == b':')
        && b[p + 1..].starts_with(b"//")
    {
        return p > 0 && b.len() > p + 3 && b[..p].iter().all(u8::is_ascii_alphabetic);
    }
    if b.len() > 4 && b[..4].eq_ignore_ascii_case(b"www.") {
        return true;
    }
    let host_end = b
        .iter()
        .position(|&c| matches!(c, b'/' | b'?' | b'#' | b':'))
        .unwrap_or(b.len());
    let (host, rest) = b.split_at(host_end);
    let Some(tld) = domain_tld(host) else {
        return false;
    };
    let has_path = rest.len() > 1 && rest[0] == b'/';
    has_path
        || COMMON_TLDS
            .iter()
            .any(|common| common.as_bytes().eq_ignore_ascii_case(tld))
}

pub(super) fn is_email(t: &str) -> bool {
    let t = t
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("mailto:"))
        .map_or(t, |_| &t[7..]);
    let Some(at) = t.bytes().position(|b| b == b'@') else {
        return false;
    };
    let (local, domain) = (&t[..at], &t[at + 1..]);
    !local.is_empty()
        && !local.starts_with('.')
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-'))
        && domain_tld(domain.as_bytes()).is_some()
}

/// The top-level domain of `host` if it is shaped like a domain name: two or more labels of
/// ASCII letters, digits and inner hyphens, ending in 2–24 letters of one case (so that
/// "gedaan.Ik" is no domain).
fn domain_tld(host: &[u8]) -> Option<&[u8]> {
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in host.split(|&b| b == b'.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-')
            && label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return None;
        }
        labels += 1;
        last = label;
    }
    let one_case =
        last.iter().all(u8::is_ascii_lowercase) || last.iter().all(u8::is_ascii_uppercase);
    (labels >= 2 && (2..=24).contains(&last.len()) && one_case).then_some(last)
}
