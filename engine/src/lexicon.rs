//! Sentiment and language, from word lists a governance lead edits in `rules/lexicon.toml`.
//! Deliberately simple and explainable: every word has a score, a negator ("niet", "not")
//! flips the next two words, and the sum decides. A team can see why a message counted as
//! negative and fix the list, which no opaque model allows.

use rustc_hash::FxHashMap;

use crate::decision::{Language, Sentiment, SentimentLabel};
use crate::language::WORD_LISTED;

#[derive(Debug, Clone, Copy, Default)]
struct WordInfo {
    score: i8,
    negator: bool,
    nl: bool,
    en: bool,
    /// Bit `i`: a common word of `language::WORD_LISTED[i]`.
    listed: u8,
}

#[derive(Debug, Default)]
pub struct Lexicon {
    words: FxHashMap<Box<str>, WordInfo>,
}

/// How many following words a negator flips.
const NEGATION_REACH: u8 = 2;

impl Lexicon {
    pub fn add_score(&mut self, word: &str, score: i8) {
        self.words.entry(word.into()).or_default().score = score;
    }

    pub fn add_negator(&mut self, word: &str) {
        self.words.entry(word.into()).or_default().negator = true;
    }

    pub fn add_language_word(&mut self, word: &str, language: Language) {
        let info = self.words.entry(word.into()).or_default();
        match language {
            Language::Nl => info.nl = true,
            Language::En => info.en = true,
        }
    }

    /// A common word of `language::WORD_LISTED[index]` (Frisian, Papiamento).
    pub fn add_listed_language_word(&mut self, word: &str, index: usize) {
        self.words.entry(word.into()).or_default().listed |= 1 << index;
    }

    /// Scores normalised text and guesses its language (`fallback` on a tie).
    pub fn analyse(&self, normalized: &str, fallback: Language) -> (Sentiment, Language) {
        let counted = self.analyse_counted(normalized, fallback);
        (counted.sentiment, counted.language)
    }

    /// Like [`Lexicon::analyse`], also counting the words the language lists know: few known
    /// words mean the text may be in another language altogether.
    pub fn analyse_counted(&self, normalized: &str, fallback: Language) -> Counted {
        let mut score: i32 = 0;
        let mut negate_left: u8 = 0;
        let (mut nl, mut en) = (0u32, 0u32);
        let mut listed = [0u32; WORD_LISTED.len()];
        let mut words = 0;
        for word in crate::normalize::words(normalized) {
            words += 1;
            let Some(info) = self.words.get(word) else {
                negate_left = negate_left.saturating_sub(1);
                continue;
            };
            nl += u32::from(info.nl);
            en += u32::from(info.en);
            for (i, count) in listed.iter_mut().enumerate() {
                *count += u32::from(info.listed >> i & 1);
            }
            if info.negator {
                negate_left = NEGATION_REACH;
                continue;
            }
            let word_score = i32::from(info.score);
            score += if negate_left > 0 && word_score != 0 {
                negate_left = 0;
                -word_score
            } else {
                negate_left = negate_left.saturating_sub(1);
                word_score
            };
        }
        let label = match score {
            s if s < 0 => SentimentLabel::Negative,
            0 => SentimentLabel::Neutral,
            _ => SentimentLabel::Positive,
        };
        let language = match nl.cmp(&en) {
            std::cmp::Ordering::Greater => Language::Nl,
            std::cmp::Ordering::Less => Language::En,
            std::cmp::Ordering::Equal => fallback,
        };
        // The first of equal maxima, so ties resolve the same way every time.
        let mut best = 0;
        for (i, count) in listed.iter().enumerate() {
            if *count > listed[best] {
                best = i;
            }
        }
        Counted {
            sentiment: Sentiment { label, score },
            language,
            known: nl.max(en),
            listed: (listed[best] > 0).then(|| (WORD_LISTED[best].0, listed[best])),
            words,
        }
    }
}

/// What the word lists say about one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted {
    pub sentiment: Sentiment,
    /// Dutch or English, whichever has more known words (the fallback on a tie).
    pub language: Language,
    /// Known Dutch or English words, of the language with more.
    pub known: u32,
    /// The word-listed language (Frisian, Papiamento) with the most known words, and how many.
    pub listed: Option<(&'static str, u32)>,
    /// How many words the text has (known or not), as [`crate::normalize::words`] splits it:
    /// counted here because the lists read every word anyway.
    pub words: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    fn lexicon() -> Lexicon {
        let mut l = Lexicon::default();
        l.add_score("goed", 1);
        l.add_score("happy", 1);
        l.add_score("slecht", -1);
        l.add_score("schandalig", -2);
        l.add_negator("niet");
        l.add_negator("not");
        for w in ["de", "het", "is", "niet", "ik"] {
            l.add_language_word(w, Language::Nl);
        }
        for w in ["the", "is", "i", "not", "am"] {
            l.add_language_word(w, Language::En);
        }
        l
    }

    fn analyse(text: &str) -> (Sentiment, Language) {
        lexicon().analyse(&normalize(text), Language::Nl)
    }

    #[test]
    fn scores_add_up_and_negators_flip_the_next_words() {
        assert_eq!(analyse("Het is goed").0.label, SentimentLabel::Positive);
        assert_eq!(
            analyse("Het is niet goed").0.label,
            SentimentLabel::Negative
        );
        assert_eq!(analyse("niet echt goed").0.score, -1);
        assert_eq!(analyse("Schandalig, echt slecht").0.score, -3);
        assert_eq!(analyse("I am not happy").0.label, SentimentLabel::Negative);
        assert_eq!(analyse("").0.label, SentimentLabel::Neutral);
    }

    #[test]
    fn language_follows_the_common_words_and_ties_fall_back() {
        assert_eq!(analyse("Ik vind het niet goed").1, Language::Nl);
        assert_eq!(analyse("I am not happy with the service").1, Language::En);
        assert_eq!(analyse("WOZ 2026").1, Language::Nl);
        assert_eq!(lexicon().analyse("xyz", Language::En).1, Language::En);
    }
}
