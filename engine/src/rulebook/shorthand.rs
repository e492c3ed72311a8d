//! Chat shorthand: how people type a word in a chat ("u" for "you", "mn" for "mijn", "im" for
//! "I'm"), from `lexicon.toml`'s `[shorthand]`, applied to every keyword phrase.
//!
//! A governance lead writes "i know where you live" once; the resident types "i know where u
//! live" or "go back to ur own country". Listing every spelling in every phrase by hand misses
//! most of them, and a lead who adds a phrase would have to remember them all. So each phrase
//! that contains a word of `[shorthand]` also matches with its shorthand, written out when the
//! rulebook compiles: a message costs what the longer keyword list would, and `explain` names
//! the spelling that matched. Phrases only: a single word's variants are stems and typos, and a
//! keyword "u" alone would match everywhere.

use std::collections::BTreeMap;

use toml::Spanned;

use super::Checker;
use crate::matcher::terms::{Keyword, parse_keyword};
use crate::normalize::normalize;

/// `[shorthand]` of lexicon.toml: a word or words, and the ways people type them.
pub type ShorthandConfig = BTreeMap<String, Spanned<Vec<Spanned<String>>>>;

/// How many spellings one keyword may gain: "you" three times in a phrase with three
/// shorthands each would otherwise make 63 keywords of one.
const MAX_SPELLINGS: usize = 8;

/// Checks every entry: the word and each shorthand have letters, and a shorthand differs from
/// its word (after normalisation, which is what the matcher compares).
pub(super) fn check_shorthand(shorthand: &ShorthandConfig, check: &mut Checker) {
    for (word, spellings) in shorthand {
        if normalize(word).is_empty() {
            check.at(
                spellings,
                format!("shorthand `{word}`: the word has no letters or digits"),
            );
        }
        if spellings.get_ref().is_empty() {
            check.at(spellings, format!("shorthand `{word}` lists no spellings"));
        }
        for spelling in spellings.get_ref() {
            let raw = spelling.get_ref();
            let normal = normalize(raw);
            let problem = if normal.is_empty() {
                Some(format!(
                    "shorthand `{word}`: `{raw}` has no letters or digits"
                ))
            } else if normal == normalize(word) {
                Some(format!(
                    "shorthand `{word}`: `{raw}` is the word itself once capitals and punctuation are set aside"
                ))
            } else if raw.contains(['*', '=', '@']) || raw.contains("NEAR/") {
                Some(format!(
                    "shorthand `{word}`: `{raw}` is a keyword's syntax; a shorthand is how a word is typed"
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                check.at(spelling, problem);
            }
        }
    }
}

/// `[shorthand]` normalised once, as the matcher compares: each word as its words, and its
/// spellings.
pub(super) struct Shorthand(Vec<(Vec<String>, Vec<String>)>);

impl Shorthand {
    pub(super) fn new(config: &ShorthandConfig) -> Self {
        Self(
            config
                .iter()
                .map(|(word, spellings)| {
                    let spellings = spellings
                        .get_ref()
                        .iter()
                        .map(|s| normalize(s.get_ref()))
                        .collect();
                    (words(&normalize(word)), spellings)
                })
                .filter(|(word, _)| !word.is_empty())
                .collect(),
        )
    }

    /// `list` with, after each phrase that holds a word of the shorthand, the phrase as typed
    /// with that shorthand: every combination, the written phrase first, up to
    /// [`MAX_SPELLINGS`] more. Each keyword made keeps the position of the one it came from.
    pub(super) fn spell_out(&self, list: Vec<Spanned<String>>) -> Vec<Spanned<String>> {
        if self.0.is_empty() {
            return list;
        }
        let mut out = Vec::with_capacity(list.len());
        for keyword in list {
            let made = spellings(keyword.get_ref(), &self.0);
            let span = keyword.span();
            out.push(keyword);
            out.extend(
                made.into_iter()
                    .map(|text| Spanned::new(span.clone(), text)),
            );
        }
        out
    }
}

/// The other spellings of one keyword, if it is a phrase holding a word of `table`.
fn spellings(raw: &str, table: &[(Vec<String>, Vec<String>)]) -> Vec<String> {
    let Ok(Keyword::Term(term)) = parse_keyword(raw) else {
        return Vec::new();
    };
    if !term.text.contains(' ') {
        return Vec::new();
    }
    let mut found = vec![term.text.clone()];
    // Each entry in turn over every spelling found so far, so "you re" and "don t" in one
    // phrase combine.
    for (word, shorthands) in table {
        let mut more = Vec::new();
        for text in &found {
            for shorthand in shorthands {
                if let Some(replaced) = replace_words(text, word, shorthand) {
                    more.push(replaced);
                }
            }
        }
        for text in more {
            if found.len() > MAX_SPELLINGS {
                break;
            }
            if !found.contains(&text) {
                found.push(text);
            }
        }
    }
    found
        .into_iter()
        .skip(1)
        .map(|text| {
            let marked = if term.exact { format!("={text}") } else { text };
            if term.prefix {
                format!("{marked}*")
            } else {
                marked
            }
        })
        .collect()
}

/// `text` with every whole-word occurrence of `word` replaced by `shorthand`, or `None` when
/// `word` does not occur.
fn replace_words(text: &str, word: &[String], shorthand: &str) -> Option<String> {
    let words = words(text);
    let mut out: Vec<&str> = Vec::with_capacity(words.len());
    let mut replaced = false;
    let mut at = 0;
    while at < words.len() {
        if words[at..].starts_with(word) {
            out.push(shorthand);
            at += word.len();
            replaced = true;
        } else {
            out.push(&words[at]);
            at += 1;
        }
    }
    replaced.then(|| out.join(" "))
}

fn words(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &[&str])]) -> ShorthandConfig {
        entries
            .iter()
            .map(|(word, spellings)| {
                let spellings = spellings
                    .iter()
                    .map(|s| Spanned::new(0..0, (*s).to_owned()))
                    .collect();
                ((*word).to_owned(), Spanned::new(0..0, spellings))
            })
            .collect()
    }

    fn spelled(keyword: &str, entries: &[(&str, &[&str])]) -> Vec<String> {
        Shorthand::new(&table(entries))
            .spell_out(vec![Spanned::new(0..0, keyword.to_owned())])
            .into_iter()
            .map(Spanned::into_inner)
            .collect()
    }

    #[test]
    fn a_phrase_also_matches_as_typed_in_a_chat() {
        let entries: &[(&str, &[&str])] =
            &[("you", &["u"]), ("your", &["ur", "yr"]), ("I'm", &["im"])];
        assert_eq!(
            spelled("i know where you live", entries),
            ["i know where you live", "i know where u live"]
        );
        assert_eq!(
            spelled("go back to your own country", entries),
            [
                "go back to your own country",
                "go back to ur own country",
                "go back to yr own country"
            ]
        );
        // Both shorthands of one phrase combine; the markers `*` and `=` stay.
        assert_eq!(
            spelled("I'm coming for you*", entries),
            [
                "I'm coming for you*",
                "im coming for you*",
                "i m coming for u*",
                "im coming for u*"
            ]
        );
    }

    #[test]
    fn single_words_near_and_words_inside_words_are_left_alone() {
        let entries: &[(&str, &[&str])] = &[("you", &["u"])];
        assert_eq!(spelled("you", entries), ["you"]);
        assert_eq!(spelled("you NEAR/3 dead", entries), ["you NEAR/3 dead"]);
        assert_eq!(
            spelled("youth centre closed", entries),
            ["youth centre closed"]
        );
    }

    #[test]
    fn a_keyword_gains_a_bounded_number_of_spellings() {
        // Sixteen combinations of two words with three shorthands each.
        let entries: &[(&str, &[&str])] =
            &[("you", &["u", "ya", "yu"]), ("and", &["n", "nd", "an"])];
        let made = spelled("you and me", entries);
        assert_eq!(made.len(), 1 + MAX_SPELLINGS, "{made:?}");
    }
}
