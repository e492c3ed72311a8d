//! Sentiment and language, from word lists a governance lead edits in `rules/lexicon.toml`.
//! Deliberately simple and explainable: every word has a score, a negator ("niet", "not")
//! flips the next two words, and the sum decides. A team can see why a message counted as
//! negative and fix the list, which no opaque model allows.

use rustc_hash::FxHashMap;

use crate::decision::{Language, Sentiment, SentimentLabel};
use crate::language::WORD_LISTED;

#[derive(Debug, Clone, Copy)]
struct WordInfo {
    score: i8,
    negator: bool,
    nl: bool,
    en: bool,
    /// Bit `i`: a common word of `language::WORD_LISTED[i]`.
    listed: u8,
    /// The word's id in the classifier's vocabulary, or [`NOT_LEARNED`].
    vocabulary: u32,
}

impl Default for WordInfo {
    fn default() -> WordInfo {
        WordInfo {
            score: 0,
            negator: false,
            nl: false,
            en: false,
            listed: 0,
            vocabulary: NOT_LEARNED,
        }
    }
}

/// No id in the classifier's vocabulary.
pub const NOT_LEARNED: u32 = u32::MAX;

/// The word lists, and the words of the classifier's examples: every message word is looked up
/// here once, and the ids it finds go to the classifier ([`Counted::vocabulary`]), which looked
/// each word up again in a table of its own (a tenth of the classifier's cost, session 15). A
/// word only the examples have reads as a word the lists do not know.
#[derive(Debug, Default)]
pub struct Lexicon {
    words: FxHashMap<Box<str>, WordInfo>,
    /// Whether [`Lexicon::learn_vocabulary`] was called: then every word of the vocabulary
    /// has its id here, and a word without one is not in it.
    learned: bool,
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

    /// Learns the classifier vocabulary's ids, so that [`Lexicon::analyse_counted`] finds each
    /// message word's id along with what the lists say of it.
    pub fn learn_vocabulary<'w>(&mut self, vocabulary: impl Iterator<Item = (&'w str, u32)>) {
        for (word, id) in vocabulary {
            self.words.entry(word.into()).or_default().vocabulary = id;
        }
        self.learned = true;
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
        self.analyse_words(crate::normalize::words(normalized), fallback)
    }

    /// [`Lexicon::analyse_counted`] of a text's words, already split.
    pub fn analyse_words<'t>(
        &self,
        text_words: impl Iterator<Item = &'t str>,
        fallback: Language,
    ) -> Counted {
        let mut score: i32 = 0;
        let mut negate_left: u8 = 0;
        let (mut nl, mut en) = (0u32, 0u32);
        let mut listed = [0u32; WORD_LISTED.len()];
        let mut words = 0;
        let mut vocabulary = if self.learned {
            Vec::with_capacity(text_words.size_hint().0.max(8))
        } else {
            Vec::new()
        };
        for word in text_words {
            words += 1;
            let Some(info) = self.words.get(word) else {
                if self.learned {
                    vocabulary.push(NOT_LEARNED);
                }
                negate_left = negate_left.saturating_sub(1);
                continue;
            };
            if self.learned {
                vocabulary.push(info.vocabulary);
            }
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
            vocabulary,
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
    /// Word by word, its id in the classifier's vocabulary ([`NOT_LEARNED`] for a word not in
    /// it), for [`crate::classifier::Classifier::read_known`]; empty when the lexicon never
    /// learned the vocabulary.
    pub vocabulary: Vec<u32>,
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
    fn the_ids_found_for_the_classifier_give_the_guess_it_makes_alone() {
        let rulebook = crate::Rulebook::embedded().expect("the default rulebook compiles");
        let classifier = rulebook.classifier.as_ref().expect("the examples train");
        let learned = &rulebook.lexicon;
        // The lexicon as it was before it learned: its words without those only the
        // vocabulary brought.
        let lists = Lexicon {
            words: learned
                .words
                .iter()
                .filter(|(_, i)| i.score != 0 || i.negator || i.nl || i.en || i.listed != 0)
                .map(|(w, i)| {
                    (
                        w.clone(),
                        WordInfo {
                            vocabulary: NOT_LEARNED,
                            ..*i
                        },
                    )
                })
                .collect(),
            learned: false,
        };
        let mut texts: Vec<String> = crate::RulebookSource::embedded()
            .examples
            .iter()
            .flat_map(|file| crate::examples::parse_examples(file).expect("the examples parse"))
            .step_by(5)
            .map(|e| normalize(&e.text))
            .collect();
        texts.push(normalize(
            "de kastenverazxq is gebrokkeld, bęłkot ляля en de dijk breekt door!",
        ));
        texts.push(String::new());
        let mut known = 0;
        for text in &texts {
            let counted = learned.analyse_counted(text, Language::Nl);
            let before = lists.analyse_counted(text, Language::Nl);
            assert_eq!(
                Counted {
                    vocabulary: Vec::new(),
                    ..counted.clone()
                },
                before,
                "{text}"
            );
            assert_eq!(counted.vocabulary.len(), counted.words, "{text}");
            known += counted
                .vocabulary
                .iter()
                .filter(|&&id| id != NOT_LEARNED)
                .count();
            let reading = classifier.read_known(text, &[], &counted.vocabulary);
            let ranges = crate::normalize::word_ranges(text);
            let split = classifier.read_known(text, &ranges, &counted.vocabulary);
            assert_eq!(split.guess(), reading.guess(), "{text}");
            assert_eq!(
                learned.analyse_words(crate::normalize::words_at(text, &ranges), Language::Nl),
                counted,
                "{text}"
            );
            assert_eq!(reading.guess(), classifier.read(text).guess(), "{text}");
        }
        assert!(known > 10_000, "only {known} words had an id");
        for (word, id) in classifier.vocabulary() {
            assert_eq!(
                learned.words.get(word).map(|i| i.vocabulary),
                Some(id),
                "{word}"
            );
        }
    }

    #[test]
    fn language_follows_the_common_words_and_ties_fall_back() {
        assert_eq!(analyse("Ik vind het niet goed").1, Language::Nl);
        assert_eq!(analyse("I am not happy with the service").1, Language::En);
        assert_eq!(analyse("WOZ 2026").1, Language::Nl);
        assert_eq!(lexicon().analyse("xyz", Language::En).1, Language::En);
    }
}
