//! The term syntax of `topics.toml`, parsed once when the rulebook loads.
//!
//! | written            | matches                                                              |
//! |--------------------|----------------------------------------------------------------------|
//! | `paspoort`         | the whole word; with the topic's stems, compounds and typos options also "paspoorten", "paspoortaanvraag", "paspoord" |
//! | `paspoort*`        | every word that starts with it                                       |
//! | `=pas`             | exactly this word: no stems, compounds or typos                      |
//! | `rivier NEAR/5 dijk` | both terms within 5 words of each other, in either order           |
//!
//! Phrases ("ruik gas") always match word for word; the variants apply to single words only,
//! because a phrase is already precise and a typo in each of its words would multiply the
//! chance of matching something else.

use crate::normalize::normalize;

/// One term, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub text: String,
    /// `word*`: any word that starts with it.
    pub prefix: bool,
    /// `=word`: no variants (stems, compounds, typos).
    pub exact: bool,
}

impl Term {
    /// Whether stems and compounds may apply: a single word, neither a prefix nor marked
    /// exact, and not a number.
    pub fn allows_variants(&self) -> bool {
        !self.prefix && self.allows_typos()
    }

    /// Whether a typo of it may match: a single word, not marked exact, not a number. A prefix
    /// keyword (`rijbewijs*`) counts: "rijbewjis" is a typo of its word.
    pub fn allows_typos(&self) -> bool {
        !self.exact && !self.text.contains(' ') && !self.text.bytes().any(|b| b.is_ascii_digit())
    }
}

/// A keyword: a term, or two terms near each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyword {
    Term(Term),
    Near { left: Term, right: Term, within: u8 },
}

/// The widest `NEAR/n`: past a sentence or two, nearness says nothing.
pub const MAX_NEAR: u8 = 20;

pub fn parse_term(raw: &str) -> Result<Term, String> {
    // Reached for an exclusion (or a side of NEAR, which never holds one): read as a phrase,
    // "a NEAR/5 b" would never match, and the veto would silently do nothing.
    if raw.contains("NEAR/") {
        return Err(format!(
            "`{raw}`: NEAR works in keywords only; an exclusion is a word or a phrase"
        ));
    }
    let trimmed = raw.trim();
    let (body, exact) = match trimmed.strip_prefix('=') {
        Some(rest) => (rest, true),
        None => (trimmed, false),
    };
    let (word, prefix) = match body.strip_suffix('*') {
        Some(word) => (word, true),
        None => (body, false),
    };
    if exact && prefix {
        return Err(format!(
            "keyword `{raw}` is both exact (`=`) and a prefix (`*`); choose one"
        ));
    }
    let text = normalize(word);
    if text.is_empty() {
        return Err(format!(
            "keyword `{raw}` has no letters or digits, so it can never match"
        ));
    }
    Ok(Term {
        text,
        prefix,
        exact,
    })
}

pub fn parse_keyword(raw: &str) -> Result<Keyword, String> {
    let Some((left, rest)) = raw.split_once(" NEAR/") else {
        if raw.contains("NEAR/") {
            return Err(format!(
                "keyword `{raw}`: write proximity as `word NEAR/5 word`, with spaces around it"
            ));
        }
        return parse_term(raw).map(Keyword::Term);
    };
    let (within, right) = rest.split_once(' ').ok_or_else(|| {
        format!("keyword `{raw}`: `NEAR/n` needs a term after it, like `rivier NEAR/5 dijk`")
    })?;
    let within: u8 = within
        .parse()
        .ok()
        .filter(|n| (1..=MAX_NEAR).contains(n))
        .ok_or_else(|| {
            format!("keyword `{raw}`: the distance in `NEAR/{within}` must be a number from 1 to {MAX_NEAR}")
        })?;
    let (left, right) = (parse_term(left)?, parse_term(right)?);
    for side in [&left, &right] {
        if side.text.contains(' ') {
            return Err(format!(
                "keyword `{raw}`: each side of NEAR is one word (`{}` is a phrase)",
                side.text
            ));
        }
    }
    Ok(Keyword::Near {
        left,
        right,
        within,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_prefixes_exact_words_and_proximity() {
        assert_eq!(
            parse_keyword("Paspoort*"),
            Ok(Keyword::Term(Term {
                text: "paspoort".into(),
                prefix: true,
                exact: false
            }))
        );
        let exact = parse_term("=pas").expect("valid");
        assert!(exact.exact && !exact.allows_variants());
        assert!(parse_term("beroep").expect("valid").allows_variants());
        assert!(!parse_term("ruik gas").expect("valid").allows_variants());
        assert!(!parse_term("112").expect("valid").allows_variants());
        assert_eq!(
            parse_keyword("rivier NEAR/5 dijk*"),
            Ok(Keyword::Near {
                left: parse_term("rivier").expect("valid"),
                right: parse_term("dijk*").expect("valid"),
                within: 5
            })
        );
    }

    #[test]
    fn mistakes_are_explained() {
        for (raw, says) in [
            ("=pas*", "choose one"),
            ("?!", "no letters"),
            ("rivier NEAR/x dijk", "must be a number"),
            ("rivier NEAR/50 dijk", "from 1 to 20"),
            ("rivier NEAR/5", "needs a term"),
            ("rivier NEAR/5 hoge dijk", "one word"),
            ("rivier NEAR/5dijk", "needs a term"),
            ("rivierNEAR/5 dijk", "with spaces"),
        ] {
            let error = parse_keyword(raw).expect_err(raw);
            assert!(error.contains(says), "{raw}: {error}");
        }
        // An exclusion is parsed as a term: proximity there is refused, not read as a phrase.
        let error = parse_term("container NEAR/5 verbouwing").expect_err("NEAR in an exclusion");
        assert!(error.contains("keywords only"), "{error}");
    }
}
