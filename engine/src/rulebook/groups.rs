//! Word groups: named lists of terms in `lexicon.toml`'s `[groups]` that keywords use as
//! `@name`, alone or on either side of `NEAR/n`.
//!
//! A governance lead means "something about to fall, near people" and should be able to write
//! it once, `@about_to_fall NEAR/10 @people_at_risk`, instead of a hundred word pairs kept in
//! step by hand; a word added to `@people_at_risk` then counts in every rule that uses it.
//! Groups are expanded when the rulebook compiles into the plain keywords the matcher already
//! knows, so a message costs what the written-out list would, and `explain` names the pair
//! that matched ("afgebroken NEAR/10 kinderen").

use std::collections::BTreeMap;

use toml::Spanned;

use super::Checker;
use crate::matcher::terms::{Keyword, parse_keyword};

/// `[groups]` of lexicon.toml: a name and its terms.
pub type GroupsConfig = BTreeMap<String, Spanned<Vec<Spanned<String>>>>;

/// A topic's keywords and exclusions with its groups written out, each keeping the position of
/// what the lead wrote: a matcher error in one points there.
pub(super) struct Expanded {
    pub keywords: Vec<Spanned<String>>,
    pub exclude: Vec<Spanned<String>>,
}

/// Checks every group: a name of lowercase letters, digits and `_`, at least one term, and each
/// term a single keyword term (`word`, `word*`, `=word` or a phrase), never a `NEAR` or a
/// group of its own.
pub(super) fn check_groups(groups: &GroupsConfig, check: &mut Checker) {
    for (name, terms) in groups {
        let well_named = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_named {
            check.at(
                terms,
                format!("group `{name}`: a name is lowercase letters, digits and `_` only"),
            );
        }
        if terms.get_ref().is_empty() {
            check.at(
                terms,
                format!("group `{name}` is empty, so a keyword using it could never match"),
            );
        }
        for term in terms.get_ref() {
            let raw = term.get_ref();
            let problem = if raw.contains('@') {
                Some(format!(
                    "group `{name}`: `{raw}` names a group; a group lists words, not groups"
                ))
            } else {
                match parse_keyword(raw) {
                    Ok(Keyword::Term(_)) => None,
                    Ok(Keyword::Near { .. }) => Some(format!(
                        "group `{name}`: `{raw}` is a NEAR; a group lists words, and the topic's keyword says how near"
                    )),
                    Err(message) => Some(format!("group `{name}`: {message}")),
                }
            };
            if let Some(problem) = problem {
                check.at(term, problem);
            }
        }
    }
}

/// A topic's keyword list with every `@name` replaced by its group's terms: `@name` alone gives
/// one keyword per term, `@a NEAR/5 @b` one per pair. Every keyword made keeps the position of
/// the keyword it came from, so an error in it points at what the lead wrote.
pub(super) fn expand(
    list: &[Spanned<String>],
    groups: &GroupsConfig,
    check: &mut Checker,
) -> Vec<Spanned<String>> {
    let mut out = Vec::with_capacity(list.len());
    for keyword in list {
        let raw = keyword.get_ref();
        if !raw.contains('@') {
            out.push(keyword.clone());
            continue;
        }
        let made = |text: String| Spanned::new(keyword.span(), text);
        let Some((left, rest)) = raw.split_once(" NEAR/") else {
            if let Some(terms) = side(raw, keyword, groups, check) {
                out.extend(terms.into_iter().map(made));
            }
            continue;
        };
        let Some((within, right)) = rest.split_once(' ') else {
            // A malformed NEAR: the matcher says what is wrong with it.
            out.push(keyword.clone());
            continue;
        };
        let (Some(lefts), Some(rights)) = (
            side(left, keyword, groups, check),
            side(right, keyword, groups, check),
        ) else {
            continue;
        };
        for l in &lefts {
            for r in &rights {
                out.push(made(format!("{l} NEAR/{within} {r}")));
            }
        }
    }
    out
}

/// One side of a keyword: a group's terms, or the term itself.
fn side(
    term: &str,
    keyword: &Spanned<String>,
    groups: &GroupsConfig,
    check: &mut Checker,
) -> Option<Vec<String>> {
    let raw = keyword.get_ref();
    let Some(name) = term.strip_prefix('@') else {
        if term.contains('@') {
            check.at(
                keyword,
                format!(
                    "keyword `{raw}`: a group is written `@name`, alone or as one side of NEAR"
                ),
            );
            return None;
        }
        return Some(vec![term.to_owned()]);
    };
    match groups.get(name) {
        Some(terms) => Some(
            terms
                .get_ref()
                .iter()
                .map(|t| t.get_ref().clone())
                .collect(),
        ),
        None => {
            let known: Vec<String> = groups.keys().map(|k| format!("@{k}")).collect();
            let known = if known.is_empty() {
                "lexicon.toml has no [groups]".to_owned()
            } else {
                format!("known: {}", known.join(", "))
            };
            check.at(
                keyword,
                format!("keyword `{raw}` uses group `@{name}`, which lexicon.toml does not define ({known})"),
            );
            None
        }
    }
}
