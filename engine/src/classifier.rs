//! The rulebook's learned second opinion: a small text classifier trained on the rulebook's
//! labelled examples (`rules/examples/*.jsonl`) every time the rulebook compiles.
//!
//! Keywords catch what a governance lead thought of; the classifier catches the rest of a
//! class of messages: the typo ("rijbewjis"), the inflection ("beroepen"), the Dutch compound
//! ("dijkdoorbraak", "paspoortaanvraag") and the phrasing nobody wrote a keyword for. It only
//! ever gives an opinion ([`Guess`]); the scripts decide what to do with it.
//!
//! # Features
//!
//! From the normalised text ([`crate::normalize::normalize`]): every word, every pair of
//! adjacent words, and the character 3- to 5-grams of every word padded with `<` and `>`
//! (`<rij`, `rijb`, `bewi`, `wijs>` …). The character n-grams are what let a typo, an
//! inflection or a compound share most of its features with the word it comes from. Features
//! are hashed with a 64-bit FNV-1a written here, not with std's hasher or FxHash: their output
//! may change with a compiler or crate update, and then the same rulebook would silently give
//! different decisions. FNV-1a is fixed by its specification (a test pins its values).
//! Each message's feature vector is scaled to unit length, so a long e-mail and a one-line
//! tweet weigh the same.
//!
//! # Model
//!
//! Multinomial naive Bayes with Lidstone smoothing and equal category priors (a crisis, rare
//! among the examples, is not guessed away for being rare). No randomness and no iteration order
//! to depend on: two trainings on the same examples give bit-identical weights, and training is a
//! single pass over the examples. Softmax (logistic) regression on the same features was measured
//! against it on the development set (`rules/eval/dev.jsonl`, never trained on) and did not do
//! better on the critical categories; both are in the test `dev_set_figures`, which prints the
//! figures (`CLASSIFIER_SWEEP=1` compares the variants). Naive Bayes counts overlapping n-grams as
//! independent evidence, so its probabilities are sharper than they should be: the scripts'
//! bars were set on the development set with that in mind.
//!
//! We train it ourselves rather than with linfa: linfa-bayes 0.8.1 leaves a `dbg!` in
//! `MultinomialNb::fit_with` that prints every class histogram to stderr, and both linfa-bayes and
//! linfa-logistic take dense `ndarray` matrices only, which for hashed text features means
//! examples × 2^18 floats. A sparse trainer is a page of code.
//!
//! # Cost
//!
//! Only the features seen in training are kept, in an open-addressing table from feature hash to
//! a row of per-category weights, centred per feature (softmax is unchanged by adding one number
//! to every category's score, and centred rows make a word's weight for a category directly
//! readable). A guess hashes the message's features, looks each one up and adds its row: no
//! model-sized work. Training is cached per process by a digest of the examples ([`train`]
//! explains why).
//!
//! [`train`]: Classifier::train

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rhai::ImmutableString;
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use crate::decision::Category;
use crate::examples::Example;
use crate::normalize::{normalize, words};
use reading::{Lookups, Rows, Scored, Vocabulary};
use table::FeatureTable;

/// Why a classifier could not be trained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrainError {
    #[error("no labelled examples to learn from")]
    NoExamples,
    #[error(
        "every example is labelled `{category}`; the classifier needs examples of at least two categories"
    )]
    OneCategory { category: Category },
    #[error(
        "the example on line {line} is labelled `unknown`, which is what the engine says when nothing matched; label it with what it is"
    )]
    UnknownLabel { line: usize },
}

/// The classifier's opinion of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Guess {
    /// The most probable category.
    pub category: Category,
    /// Its probability, from 0 to 1.
    pub score: f32,
    /// Up to three words of the message that weighed most for `category`, heaviest first, so a
    /// governance lead can see why.
    pub words: Vec<String>,
    /// The probability of every trained category, in the order of [`Classifier::categories`];
    /// they add up to 1.
    pub probabilities: Vec<(Category, f32)>,
}

impl Guess {
    /// The probability of `category`; 0 for a category the classifier was not trained on.
    pub fn probability(&self, category: Category) -> f32 {
        self.probabilities
            .iter()
            .find(|(c, _)| *c == category)
            .map_or(0.0, |(_, p)| *p)
    }
}

/// A trained classifier. Immutable, so one `Arc` serves every thread.
#[derive(Debug)]
pub struct Classifier {
    categories: Vec<Category>,
    params: Params,
    table: FeatureTable,
    /// The bias per category, centred, and one row of `categories.len()` weights per kept
    /// feature, centred per row.
    rows: Rows,
    /// The word and n-gram rows of every word of the examples, so a message word the
    /// examples used is not hashed into n-grams again.
    vocabulary: Vocabulary,
    /// The second model: which topic a question or report is about, learned from the examples
    /// that name one. `None` when fewer than two topics are named.
    topics: Option<TopicModel>,
}

/// A message as [`Classifier::read`] read it.
#[derive(Debug)]
pub struct Reading<'a> {
    classifier: &'a Classifier,
    text: &'a str,
    lookups: Lookups<'a>,
}

impl Reading<'_> {
    /// The guess for the whole message; the same as [`Classifier::guess`].
    pub fn guess(&self) -> Guess {
        let c = self.classifier;
        let all = 0..self.lookups.word_count();
        c.to_guess(self.lookups.score(self.text, all, &c.params, &c.rows, true))
    }

    /// The guess for `part`, a normalised piece of the message such as one sentence; the same
    /// as [`Classifier::guess`] of `part`, made from this reading's lookups when `part`'s
    /// words occur in a row in the message.
    pub fn guess_part(&self, part: &str) -> Guess {
        self.part(part, true)
    }

    /// [`Reading::guess_part`] without the words that weighed most (`words` is empty): the
    /// same category, score and probabilities, for comparing sentences before it is known
    /// whose words anyone reads.
    pub fn guess_part_unexplained(&self, part: &str) -> Guess {
        self.part(part, false)
    }

    fn part(&self, part: &str, explain: bool) -> Guess {
        let c = self.classifier;
        match self.lookups.find_run(self.text, part) {
            Some(run) => c.to_guess(
                self.lookups
                    .score(self.text, run, &c.params, &c.rows, explain),
            ),
            None => c.guess(part),
        }
    }
}

/// Which topic a question or report is about, as learned from the examples: a second opinion on
/// the keyword topic, so a message about the opening hours of the recycling centre is not
/// answered with the bulky-waste text because "milieustraat" is one of its keywords. Same
/// features and model as the categories, over other labels.
#[derive(Debug)]
struct TopicModel {
    /// Topic ids in sorted order, as scripts read them: made once, so that a guess lists every
    /// topic without copying its name.
    ids: Vec<ImmutableString>,
    table: FeatureTable,
    rows: Rows,
    /// The examples' words with their rows in this model's table, as for the categories.
    vocabulary: Vocabulary,
    /// Whether `vocabulary` gives every word the id the categories' vocabulary gives it, so a
    /// message's ids as the lexicon found them ([`Classifier::read_known`]) serve this model
    /// too. Both are made from the same words in the same order, so it does; checked when
    /// trained all the same, so that a change to either cannot make a guess read one word as
    /// another.
    shares_ids: bool,
}

/// The classifier's opinion of which topic a question or report is about.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicGuess {
    /// The most probable topic.
    pub topic: ImmutableString,
    pub score: f32,
    /// Up to three words that weighed most for `topic`.
    pub words: Vec<String>,
    /// Every topic the examples name, with its probability; they add up to 1.
    pub probabilities: Vec<(ImmutableString, f32)>,
}

impl Classifier {
    /// Trains on `examples`, deterministically: the same examples in the same order always give
    /// the same classifier, whatever the platform's hasher, thread count or time.
    ///
    /// Every rulebook compile trains, and the test suite compiles the default rulebook many
    /// times (in debug builds, where training is slow), so identical examples are trained once
    /// per process: the result is kept in a small process-wide cache keyed by a SHA-256 digest
    /// of the examples' texts and labels. Two threads asking for the same examples at once
    /// train once; the second waits for the first.
    pub fn train(examples: &[Example]) -> Result<Arc<Classifier>, TrainError> {
        let categories = check(examples)?;
        let slot = cache::slot(digest(examples));
        Ok(Arc::clone(slot.get_or_init(|| {
            Arc::new(fit(examples, categories, &Params::DEFAULT))
        })))
    }

    /// The categories it was trained on, in [`Category::ALL`] order.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// Guesses the category of a message. `normalized` is the message after
    /// [`crate::normalize::normalize`]: lowercase, no accents, words of letters and digits
    /// separated by single spaces. An empty message gets the categories' prior probabilities.
    pub fn guess(&self, normalized: &str) -> Guess {
        self.read(normalized).guess()
    }

    /// Reads a message once, for a guess of the whole and of its sentences
    /// ([`Reading::guess_part`]) without hashing its words again for each.
    pub fn read<'a>(&'a self, normalized: &'a str) -> Reading<'a> {
        self.read_known(normalized, &[], &[])
    }

    /// [`Classifier::read`] of a text already split into `words`
    /// ([`crate::normalize::word_ranges`]; empty to split it here), with the ids of its words
    /// in this classifier's vocabulary ([`Classifier::vocabulary`]; `u32::MAX` for a word it
    /// does not have), word by word, as a lexicon that learned them found them: the words are
    /// not looked up again. The guess is the same.
    pub fn read_known<'a>(
        &'a self,
        normalized: &'a str,
        words: &[(u32, u32)],
        ids: &[u32],
    ) -> Reading<'a> {
        Reading {
            classifier: self,
            text: normalized,
            lookups: Lookups::new(
                normalized,
                words,
                &self.params,
                &self.table,
                &self.vocabulary,
                ids,
            ),
        }
    }

    /// The words of the examples, each with its id for [`Classifier::read_known`].
    pub fn vocabulary(&self) -> impl Iterator<Item = (&str, u32)> {
        self.vocabulary.ids()
    }

    fn to_guess(&self, (probabilities, best, words): Scored) -> Guess {
        Guess {
            category: self.categories[best],
            score: probabilities[best],
            words,
            probabilities: self.categories.iter().copied().zip(probabilities).collect(),
        }
    }

    /// Whether the examples name `topic`, so [`Classifier::guess_topic`] gives it a
    /// probability at all; answered without scoring a message. The ids are sorted: a binary
    /// search, not a comparison with each (the scripts ask about once a decision).
    pub fn knows_topic(&self, topic: &str) -> bool {
        self.topics
            .as_ref()
            .is_some_and(|t| t.ids.binary_search_by(|id| id.as_str().cmp(topic)).is_ok())
    }

    /// Guesses which topic a question or report is about; `None` when the examples name fewer
    /// than two topics. Asked only when a script reads it: most decisions never do.
    pub fn guess_topic(&self, normalized: &str) -> Option<TopicGuess> {
        self.guess_topic_known(normalized, &[], &[])
    }

    /// [`Classifier::guess_topic`] of a text already split into `words`, with its words' `ids`
    /// in [`Classifier::vocabulary`], as for [`Classifier::read_known`]: the message's words
    /// are not split and looked up again for the second model. The guess is the same.
    pub fn guess_topic_known(
        &self,
        normalized: &str,
        words: &[(u32, u32)],
        ids: &[u32],
    ) -> Option<TopicGuess> {
        let topics = self.topics.as_ref()?;
        let ids = if topics.shares_ids { ids } else { &[] };
        let lookups = Lookups::new(
            normalized,
            words,
            &self.params,
            &topics.table,
            &topics.vocabulary,
            ids,
        );
        let (probabilities, best, words) = lookups.score(
            normalized,
            0..lookups.word_count(),
            &self.params,
            &topics.rows,
            true,
        );
        Some(TopicGuess {
            topic: topics.ids[best].clone(),
            score: probabilities[best],
            words,
            probabilities: topics.ids.iter().cloned().zip(probabilities).collect(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Features

/// How the text becomes features and how naive Bayes weighs them. One fixed set is used
/// ([`Params::DEFAULT`], chosen on the development set); the others exist for the measurements
/// in `dev_set_figures`. Measured again with 13,944 examples (session 9, BENCHMARKS.md): the
/// character n-grams at 0.3 instead of 0.5 gave 39 fewer false alarms in cross-validation, but
/// broke golden cases, and so did less smoothing. With 56,530 examples (session 30, once the
/// blind sets were among them) both together won on every count of `webcare eval --folds 5`:
/// 42 more acceptable decisions, 11 more critical messages to their team, 12 more automated,
/// and 6 critical messages answered by the bot instead of 11. More examples make each word
/// surer, so the character n-grams, which stand in for words not seen, need less weight.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Params {
    /// Character n-gram lengths, inclusive, counting the `<` and `>` word edges.
    ngram_min: usize,
    ngram_max: usize,
    /// The value of one occurrence of each kind of feature, before scaling to unit length.
    word_weight: f32,
    pair_weight: f32,
    ngram_weight: f32,
    /// Features in fewer training examples than this are dropped: noise, and table space.
    min_count: u32,
    /// Features in more than this share of the examples are dropped too: words every category
    /// uses.
    max_share: f32,
    /// Additive (Lidstone) smoothing of the feature counts. Small, because the counts are
    /// fractions (every example has unit length) and most features are rare.
    alpha: f32,
    /// From 0 (a category's share of the examples is its prior) to 1 (equal priors). Halfway
    /// keeps some of what the examples say about how common a category is, while a crisis,
    /// rare among the examples, is not guessed away for being rare.
    balance: f32,
}

impl Params {
    const DEFAULT: Params = Params {
        ngram_min: 4,
        ngram_max: 4,
        word_weight: 1.0,
        pair_weight: 1.0,
        ngram_weight: 0.3,
        min_count: 1,
        max_share: 0.04,
        alpha: 0.005,
        balance: 1.0,
    };
}

/// 64-bit FNV-1a (Fowler–Noll–Vo). Its constants are fixed by its specification, so a feature's
/// hash, and with it every decision, never changes with a toolchain or dependency update.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A hash started with a byte that says which kind of feature follows, so the word "bij"
    /// and the n-gram "bij" are different features.
    #[inline]
    fn kind(kind: u8) -> Fnv {
        Fnv(Fnv::OFFSET).byte(kind)
    }

    #[inline]
    fn byte(self, b: u8) -> Fnv {
        Fnv((self.0 ^ u64::from(b)).wrapping_mul(Fnv::PRIME))
    }

    #[inline]
    fn bytes(self, bytes: &[u8]) -> Fnv {
        bytes.iter().fold(self, |h, b| h.byte(*b))
    }
}

const KIND_WORD: u8 = b'w';
const KIND_PAIR: u8 = b'p';
const KIND_NGRAM: u8 = b'n';

fn word_hash(word: &str) -> u64 {
    Fnv::kind(KIND_WORD).bytes(word.as_bytes()).0
}

fn pair_hash(previous: &str, word: &str) -> u64 {
    Fnv::kind(KIND_PAIR)
        .bytes(previous.as_bytes())
        .byte(b' ')
        .bytes(word.as_bytes())
        .0
}

/// Calls `emit(hash, value)` for every feature of `normalized`, repeats included: per word,
/// the word, the pair it ends, then its n-grams (`reading::Lookups` keeps this order).
fn for_each_feature(normalized: &str, params: &Params, mut emit: impl FnMut(u64, f32)) {
    let mut previous: Option<&str> = None;
    for word in words(normalized) {
        if params.word_weight > 0.0 {
            emit(word_hash(word), params.word_weight);
        }
        if let Some(previous) = previous
            && params.pair_weight > 0.0
        {
            emit(pair_hash(previous, word), params.pair_weight);
        }
        if params.ngram_weight > 0.0 {
            char_ngrams(word, params.ngram_min, params.ngram_max, |hash| {
                emit(hash, params.ngram_weight);
            });
        }
        previous = Some(word);
    }
}

/// The character `min..=max`-grams of `<word>`, by characters (not bytes, so a Cyrillic or
/// Arabic letter is one unit). Each start position extends one running hash, so every n-gram
/// costs one FNV step per character, not one per character per length.
fn char_ngrams(word: &str, min: usize, max: usize, mut emit: impl FnMut(u64)) {
    let bytes = word.as_bytes();
    // Most words are ASCII and short: one byte a unit, read from a padded copy, and no start
    // that is too near the end for a whole n-gram. Same hashes, in the same order.
    let mut padded = [0u8; 64];
    if word.is_ascii() && bytes.len() + 2 <= padded.len() && min > 0 {
        let units = bytes.len() + 2;
        padded[0] = b'<';
        padded[1..=bytes.len()].copy_from_slice(bytes);
        padded[units - 1] = b'>';
        let padded = &padded[..units];
        for start in 0..(units + 1).saturating_sub(min) {
            let mut hash = Fnv::kind(KIND_NGRAM);
            for (k, b) in padded[start..units.min(start + max)].iter().enumerate() {
                hash = hash.byte(*b);
                if k + 1 >= min {
                    emit(hash.0);
                }
            }
        }
        return;
    }
    // Byte offsets where each character starts, plus the end; only needed off the ASCII path.
    let bounds: Vec<usize> = if word.is_ascii() {
        Vec::new()
    } else {
        word.char_indices()
            .map(|(at, _)| at)
            .chain([bytes.len()])
            .collect()
    };
    let chars = if bounds.is_empty() {
        bytes.len()
    } else {
        bounds.len() - 1
    };
    let units = chars + 2;
    let unit = |k: usize| -> &[u8] {
        if k == 0 {
            b"<"
        } else if k == units - 1 {
            b">"
        } else if bounds.is_empty() {
            &bytes[k - 1..k]
        } else {
            &bytes[bounds[k - 1]..bounds[k]]
        }
    };
    for start in 0..units {
        let mut hash = Fnv::kind(KIND_NGRAM);
        for k in start..units.min(start + max) {
            hash = hash.bytes(unit(k));
            if k + 1 - start >= min {
                emit(hash.0);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Training

/// The categories to train, in [`Category::ALL`] order, or why there is nothing to train.
fn check(examples: &[Example]) -> Result<Vec<Category>, TrainError> {
    if examples.is_empty() {
        return Err(TrainError::NoExamples);
    }
    if let Some(example) = examples.iter().find(|e| e.category == Category::Unknown) {
        return Err(TrainError::UnknownLabel { line: example.line });
    }
    let mut categories: Vec<Category> = examples.iter().map(|e| e.category).collect();
    categories.sort_unstable();
    categories.dedup();
    if categories.len() < 2 {
        return Err(TrainError::OneCategory {
            category: categories[0],
        });
    }
    Ok(categories)
}

/// One training example as sparse (feature, value) pairs, scaled to unit length.
struct Sparse {
    class: usize,
    features: Vec<(u32, f32)>,
}

/// The examples as feature vectors, and what is known of each feature (by id, first seen
/// first).
struct Prepared {
    docs: Vec<Sparse>,
    hashes: Vec<u64>,
    /// In how many examples each feature occurs.
    doc_count: Vec<u32>,
}

/// Trains on examples that passed [`check`]. The topic model shares nothing with the category
/// model but the examples, so it trains on a second thread meanwhile: a rulebook loads in the
/// time of the longer of the two.
fn fit(examples: &[Example], categories: Vec<Category>, params: &Params) -> Classifier {
    // Normalised once, for both models and the vocabularies.
    let texts: Vec<String> = examples.iter().map(|e| normalize(&e.text)).collect();
    // The examples' words, in order: a vocabulary keeps the rows of every word they use.
    let words_seen = || texts.iter().flat_map(|text| words(text));
    std::thread::scope(|scope| {
        let topics = scope.spawn(|| {
            fit_topics(examples, &texts, params).map(|mut topics| {
                topics.vocabulary =
                    Vocabulary::new(words_seen(), params, &topics.table, &topics.rows);
                topics
            })
        });
        let prepared = prepare(examples, &texts, &categories, params);
        let (bias, weights) = naive_bayes(&prepared, categories.len(), params);
        let mut classifier = finish(categories, params, &prepared, bias, weights);
        classifier.vocabulary =
            Vocabulary::new(words_seen(), params, &classifier.table, &classifier.rows);
        classifier.topics = topics
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        if let Some(topics) = &mut classifier.topics {
            topics.shares_ids = topics.vocabulary.same_ids(&classifier.vocabulary);
        }
        classifier
    })
}

/// The topic model, from the questions and reports whose example names a topic.
fn fit_topics(examples: &[Example], texts: &[String], params: &Params) -> Option<TopicModel> {
    let named: Vec<(&str, &str)> = examples
        .iter()
        .zip(texts)
        .filter(|(e, _)| matches!(e.category, Category::Question | Category::Report))
        .filter_map(|(e, text)| e.topic.as_deref().map(|t| (text.as_str(), t)))
        .collect();
    let mut ids: Vec<String> = named.iter().map(|(_, t)| (*t).to_owned()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() < 2 {
        return None;
    }
    let prepared = prepare_labelled(
        named.iter().map(|(text, t)| {
            let class = ids.binary_search_by(|id| id.as_str().cmp(t)).unwrap_or(0);
            (*text, class)
        }),
        params,
    );
    let (bias, weights) = naive_bayes(&prepared, ids.len(), params);
    let (table, rows) = keep_features(ids.len(), params, &prepared, bias, weights);
    Some(TopicModel {
        ids: ids.into_iter().map(ImmutableString::from).collect(),
        table,
        rows,
        vocabulary: Vocabulary::default(),
        shares_ids: false,
    })
}

/// `texts` are the examples' texts, normalised.
fn prepare(
    examples: &[Example],
    texts: &[String],
    categories: &[Category],
    params: &Params,
) -> Prepared {
    prepare_labelled(
        examples.iter().zip(texts).map(|(example, text)| {
            let class = categories
                .iter()
                .position(|c| *c == example.category)
                .unwrap_or(0);
            (text.as_str(), class)
        }),
        params,
    )
}

/// The normalised texts as feature vectors, each with the index of its class.
fn prepare_labelled<'a>(
    labelled: impl Iterator<Item = (&'a str, usize)>,
    params: &Params,
) -> Prepared {
    // FxHashMap only maps hash → id here; nothing depends on its iteration order.
    let mut ids: FxHashMap<u64, u32> = FxHashMap::default();
    let mut hashes: Vec<u64> = Vec::new();
    let mut doc_count: Vec<u32> = Vec::new();
    let mut docs: Vec<Sparse> = Vec::new();
    let mut features: Vec<(u32, f32)> = Vec::new();
    for (text, class) in labelled {
        features.clear();
        let mut squares = 0.0f32;
        for_each_feature(text, params, |hash, value| {
            squares += value * value;
            let next = u32::try_from(hashes.len()).unwrap_or(u32::MAX);
            let id = *ids.entry(hash).or_insert(next);
            if id == next {
                hashes.push(hash);
                doc_count.push(0);
            }
            features.push((id, value));
        });
        // Merge repeats, so each feature appears once per example (and is counted once in
        // `doc_count`).
        features.sort_unstable_by_key(|(id, _)| *id);
        let mut merged: Vec<(u32, f32)> = Vec::with_capacity(features.len());
        for &(id, value) in &features {
            match merged.last_mut() {
                Some(last) if last.0 == id => last.1 += value,
                _ => {
                    merged.push((id, value));
                    doc_count[id as usize] += 1;
                }
            }
        }
        // The same length as `guess` scales a message by: over every occurrence, repeats
        // included, so both sides agree without `guess` having to merge repeats.
        let scale = if squares > 0.0 {
            1.0 / squares.sqrt()
        } else {
            1.0
        };
        for (_, value) in &mut merged {
            *value *= scale;
        }
        docs.push(Sparse {
            class,
            features: merged,
        });
    }
    Prepared {
        docs,
        hashes,
        doc_count,
    }
}

fn finish(
    categories: Vec<Category>,
    params: &Params,
    prepared: &Prepared,
    bias: Vec<f32>,
    weights: Vec<f32>,
) -> Classifier {
    let (table, rows) = keep_features(categories.len(), params, prepared, bias, weights);
    Classifier {
        categories,
        params: *params,
        table,
        rows,
        vocabulary: Vocabulary::default(),
        topics: None,
    }
}

/// Centres the bias and the rows, drops the rare features and builds the lookup table. The
/// kept rows are moved down over the dropped ones in place: the weights are the largest buffer
/// training makes, and a copy of them cost more than the rest of this.
fn keep_features(
    n: usize,
    params: &Params,
    prepared: &Prepared,
    mut bias: Vec<f32>,
    mut weights: Vec<f32>,
) -> (FeatureTable, Rows) {
    centre(&mut bias);
    let mut kept_hashes = Vec::with_capacity(prepared.hashes.len());
    // A feature in more than `max_share` of all examples ("ik", "the", "<de>") says little about
    // any one category, yet on few examples naive Bayes lets it tip a guess: it is dropped.
    // Only on a set large enough for "common" to mean something: in a handful of examples every
    // feature is in more than 4% of them.
    let most = if prepared.docs.len() >= 500 {
        (params.max_share * prepared.docs.len() as f32).ceil() as u32
    } else {
        u32::MAX
    };
    let mut kept = 0;
    for (id, &count) in prepared.doc_count.iter().enumerate() {
        if count >= params.min_count && count <= most {
            weights.copy_within(id * n..(id + 1) * n, kept * n);
            centre(&mut weights[kept * n..(kept + 1) * n]);
            kept_hashes.push(prepared.hashes[id]);
            kept += 1;
        }
    }
    weights.truncate(kept * n);
    (FeatureTable::new(&kept_hashes), Rows::new(&bias, &weights))
}

fn centre(row: &mut [f32]) {
    let mean = row.iter().sum::<f32>() / row.len() as f32;
    for w in row {
        *w -= mean;
    }
}

/// Multinomial naive Bayes: (log priors, log feature likelihoods with one row per feature).
/// No randomness and no iteration order to depend on: sums in example order, in f64.
fn naive_bayes(prepared: &Prepared, n: usize, params: &Params) -> (Vec<f32>, Vec<f32>) {
    let features = prepared.hashes.len();
    let mut counts = vec![0.0f64; features * n];
    let mut totals = vec![0.0f64; n];
    let mut docs_per_class = vec![0usize; n];
    for doc in &prepared.docs {
        docs_per_class[doc.class] += 1;
        for &(id, value) in &doc.features {
            counts[id as usize * n + doc.class] += f64::from(value);
            totals[doc.class] += f64::from(value);
        }
    }
    let alpha = f64::from(params.alpha);
    let denominators: Vec<f64> = totals
        .iter()
        .map(|t| (t + alpha * features as f64).ln())
        .collect();
    // Sized once: collected through `flat_map`, the largest buffer of training grew by
    // doubling, each time copied and its fresh pages zeroed.
    let mut weights = Vec::with_capacity(counts.len());
    for row in counts.chunks_exact(n) {
        weights.extend(
            row.iter()
                .zip(&denominators)
                .map(|(c, d)| ((c + alpha).ln() - d) as f32),
        );
    }
    let all = prepared.docs.len() as f64;
    let keep = 1.0 - f64::from(params.balance);
    let bias = docs_per_class
        .iter()
        .map(|&d| ((d.max(1) as f64 / all).ln() * keep) as f32)
        .collect();
    (bias, weights)
}

// ---------------------------------------------------------------------------------------------
// The process-wide cache

/// What the cache is keyed by: the examples' labels and texts, in order, and the version of the
/// features and model (bump it when either changes, although a process never sees two).
fn digest(examples: &[Example]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"webcare-classifier-2\0");
    for example in examples {
        hasher.update(example.category.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(example.topic.as_deref().unwrap_or("").as_bytes());
        hasher.update([0]);
        hasher.update((example.text.len() as u64).to_le_bytes());
        hasher.update(example.text.as_bytes());
    }
    hasher.finalize().into()
}

mod cache;
mod reading;
mod table;

#[cfg(test)]
mod tests;
