//! Redaction of personal data in stored text, for organisations that must not keep e-mail
//! addresses, phone numbers, bank accounts (IBAN) or citizen service numbers (BSN) in their
//! message log (AVG/GDPR data minimisation). It runs before a message is stored; the decision is
//! made on the original text, so a redacted log replays to slightly different decisions only
//! where a rule looked at exactly these details.
//!
//! Word edges are ASCII `(?-u:\b)`, as DESIGN.md §4 asks: Unicode `\b` is far slower, and these
//! patterns are ASCII anyway.

use std::borrow::Cow;

use regex::{Captures, Regex};

/// The compiled patterns. Build once; redacting a text is a few scans.
pub struct Redactor {
    patterns: Vec<(Regex, Kind)>,
}

#[derive(Clone, Copy)]
enum Kind {
    Iban,
    Email,
    Phone,
    Bsn,
}

impl Kind {
    fn placeholder(self) -> &'static str {
        match self {
            Kind::Iban => "[iban]",
            Kind::Email => "[email]",
            Kind::Phone => "[phone]",
            Kind::Bsn => "[bsn]",
        }
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

impl Redactor {
    pub fn new() -> Self {
        // Order matters: an IBAN holds long digit runs a phone or BSN pattern would also take.
        let sources = [
            (
                r"(?i)(?-u:\b)[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?(?-u:\b)",
                Kind::Iban,
            ),
            (
                r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
                Kind::Email,
            ),
            (
                // International (+31 6 1234 5678, 0031…) or Dutch national (06-12345678,
                // 020 123 4567): a plus or leading zero, then 9 to 12 more digits with optional
                // separators.
                r"(?:\+|(?-u:\b)00|(?-u:\b)0)[0-9](?:[ \-]?(?:\(0\))?[ \-]?[0-9]){8,11}(?-u:\b)",
                Kind::Phone,
            ),
            (
                r"(?-u:\b)(?:[0-9]{9}|[0-9]{4}\.[0-9]{2}\.[0-9]{3})(?-u:\b)",
                Kind::Bsn,
            ),
        ];
        let patterns = sources
            .into_iter()
            .filter_map(|(source, kind)| match Regex::new(source) {
                Ok(re) => Some((re, kind)),
                // The patterns are constants covered by the tests below; never reached.
                Err(error) => {
                    tracing::error!(%error, "redaction pattern does not compile");
                    None
                }
            })
            .collect();
        Redactor { patterns }
    }

    /// `text` with every match replaced by a placeholder like `[email]`.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for (re, kind) in &self.patterns {
            if !re.is_match(&out) {
                continue;
            }
            let replaced = re.replace_all(&out, |caps: &Captures<'_>| {
                let found = caps.get(0).map_or("", |m| m.as_str());
                match kind {
                    // Only numbers that pass the BSN eleven-test; other 9-digit numbers
                    // (order numbers, postcodes with house numbers) stay.
                    Kind::Bsn if !is_bsn(found) => found.to_owned(),
                    _ => kind.placeholder().to_owned(),
                }
            });
            out = Cow::Owned(replaced.into_owned());
        }
        out
    }
}

/// The BSN "elfproef": 9×d1 + 8×d2 + … + 2×d8 − d9 is divisible by 11.
fn is_bsn(text: &str) -> bool {
    let digits: Vec<i64> = text
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| i64::from(b - b'0'))
        .collect();
    if digits.len() != 9 {
        return false;
    }
    let sum: i64 = digits
        .iter()
        .take(8)
        .enumerate()
        .map(|(i, d)| (9 - i as i64) * d)
        .sum::<i64>()
        - digits[8];
    sum % 11 == 0 && sum != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_each_kind_and_leaves_the_rest() {
        let r = Redactor::new();
        let cases = [
            (
                "mail me at jan.de-vries@example.nl please",
                "mail me at [email] please",
            ),
            ("bel 06-12345678 of 020 123 4567", "bel [phone] of [phone]"),
            ("call +31 6 1234 5678 now", "call [phone] now"),
            (
                "rekening NL91 ABNA 0417 1643 00 graag",
                "rekening [iban] graag",
            ),
            ("rekening nl91abna0417164300.", "rekening [iban]."),
            ("mijn bsn is 111222333", "mijn bsn is [bsn]"),
            ("ordernummer 123456789", "ordernummer 123456789"),
            ("huisnummer 12 in 1234 AB", "huisnummer 12 in 1234 AB"),
            ("géén gegevens, één vraag", "géén gegevens, één vraag"),
        ];
        for (input, expected) in cases {
            assert_eq!(r.redact(input), expected, "{input}");
        }
    }

    #[test]
    fn eleven_test() {
        assert!(is_bsn("111222333"));
        assert!(is_bsn("1112.22.333"));
        assert!(!is_bsn("123456789"));
        assert!(!is_bsn("000000000"));
    }
}
