//! What the rulebook's files give the keyword matcher besides the topics: the lexicon's
//! negation words and the words it knows are spelled right, the words the labelled examples
//! use often enough to be real words rather than typos, and a term the matcher refused, put
//! back at its place in `topics.toml`.

use std::collections::BTreeSet;

use super::config::{LexiconFile, TopicConfig};
use super::error::{Location, RulebookError};
use super::source::SourceFile;
use super::{Checker, groups};
use crate::examples::Example;
use crate::matcher::{MatcherSettings, Negation, TermError, TermList};
use crate::normalize::{normalize, normalize_into};

/// The lexicon's part in matching: the negation words, and every word it lists as spelled
/// right, so a typo match never mistakes one of them for a keyword.
pub(super) fn matcher_settings(
    lexicon: &LexiconFile,
    file: &SourceFile,
    wants_negation: bool,
    errors: &mut Vec<RulebookError>,
) -> MatcherSettings {
    let mut check = Checker { file, errors };
    let mut negation = Negation::default();
    match &lexicon.negation {
        Some(n) => {
            negation.negators = n
                .negators
                .iter()
                .filter_map(|w| check.one_word(w))
                .collect();
            negation.enders = n.enders.iter().filter_map(|w| check.one_word(w)).collect();
            negation.reach = match &n.reach {
                None => 3,
                Some(reach) if (1..=10).contains(reach.get_ref()) => *reach.get_ref(),
                Some(reach) => {
                    check.at(reach, "`reach` must be from 1 to 10 words");
                    3
                }
            };
        }
        None if wants_negation => check.errors.push(RulebookError::invalid(
            Location {
                file: file.path.clone(),
                line: 1,
                column: 1,
            },
            "a topic uses `negation`, but the lexicon has no [negation] section with its negators",
        )),
        None => {}
    }
    let s = &lexicon.sentiment;
    let known_words = [
        &s.very_positive,
        &s.positive,
        &s.negative,
        &s.very_negative,
        &s.negators,
        &lexicon.language.nl,
        &lexicon.language.en,
    ]
    .into_iter()
    .flatten()
    .map(|w| w.get_ref())
    .chain(&lexicon.typos.real_words);
    let known_words = single_words(known_words);
    let compound_endings = single_words(&lexicon.compounds.endings);
    MatcherSettings {
        negation,
        known_words,
        compound_endings,
    }
}

/// The lexicon's words as the matcher compares them: normalised, one word each.
fn single_words<'w>(words: impl IntoIterator<Item = &'w String>) -> Vec<String> {
    words
        .into_iter()
        .map(|w| normalize(w))
        .filter(|w| !w.is_empty() && !w.contains(' '))
        .collect()
}

/// Words that several labelled examples use are real words, not typos: "letter" must not read
/// as a misspelt "litter". A misspelling is rarely made the same way three times, so the
/// typos the examples contain on purpose stay unknown.
pub(super) fn common_words(examples: &[Example]) -> Vec<String> {
    let mut counts: rustc_hash::FxHashMap<String, u32> = Default::default();
    let mut text = String::new();
    for example in examples {
        normalize_into(&example.text, &mut text);
        let mut seen = BTreeSet::new();
        for word in text.split(' ') {
            if word.len() >= 4 && seen.insert(word) {
                *counts.entry(word.to_owned()).or_default() += 1;
            }
        }
    }
    let mut words: Vec<String> = counts
        .into_iter()
        .filter(|(_, n)| *n >= 3)
        .map(|(w, _)| w)
        .collect();
    words.sort_unstable();
    words
}

pub(super) fn report_term_error(
    check: &mut Checker,
    topics: &[TopicConfig],
    expanded: &[groups::Expanded],
    error: TermError,
) {
    match error {
        TermError::Keyword(t, list, k, message) => {
            let terms = match list {
                TermList::Keywords => &expanded[t].keywords,
                TermList::Exclude => &expanded[t].exclude,
            };
            check.at(&terms[k], message);
        }
        TermError::Pattern(t, p, message) => {
            let pattern = &topics[t].patterns[p];
            let message = format!(
                "pattern `{}` is not a valid regular expression: {message}",
                pattern.get_ref()
            );
            check.at(pattern, message);
        }
        TermError::Automaton(message) => {
            let at = Location {
                file: check.file.path.clone(),
                line: 1,
                column: 1,
            };
            check.errors.push(RulebookError::invalid(
                at,
                format!("the keywords could not be compiled: {message}"),
            ));
        }
    }
}
