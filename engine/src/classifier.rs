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

use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use crate::decision::Category;
use crate::examples::Example;
use crate::normalize::normalize_into;

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
    /// Per category, centred.
    bias: Vec<f32>,
    table: FeatureTable,
    /// One row of `categories.len()` weights per kept feature, centred per row.
    weights: Vec<f32>,
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
        let n = self.categories.len();
        let word_count = words(normalized).count();
        // Per word and category, the weight of that word's features: summed they are the
        // scores, and the winner's column says which words weighed most.
        let mut per_word = vec![0.0f32; word_count * n];
        let mut squares = 0.0f32;
        for_each_feature(normalized, &self.params, |hash, origin, value| {
            squares += value * value;
            let Some(row) = self.table.get(hash) else {
                return;
            };
            let row = &self.weights[row * n..(row + 1) * n];
            match origin {
                Origin::Word(i) => add_scaled(&mut per_word[i * n..(i + 1) * n], row, value),
                Origin::Pair(i) => {
                    // A pair of words counts half for each.
                    add_scaled(&mut per_word[i * n..(i + 1) * n], row, value * 0.5);
                    add_scaled(&mut per_word[(i + 1) * n..(i + 2) * n], row, value * 0.5);
                }
            }
        });
        let scale = if squares > 0.0 {
            1.0 / squares.sqrt()
        } else {
            1.0
        };
        let mut scores = self.bias.clone();
        for word in per_word.chunks_exact(n) {
            for (s, w) in scores.iter_mut().zip(word) {
                *s += w * scale;
            }
        }
        let probabilities = softmax(&scores);
        // The first of equal maxima, so ties resolve the same way every time.
        let mut best = 0;
        for (k, p) in probabilities.iter().enumerate() {
            if *p > probabilities[best] {
                best = k;
            }
        }
        Guess {
            category: self.categories[best],
            score: probabilities[best],
            words: heaviest_words(normalized, &per_word, n, best),
            probabilities: self.categories.iter().copied().zip(probabilities).collect(),
        }
    }
}

/// `out` += `row` × `value`.
#[inline]
fn add_scaled(out: &mut [f32], row: &[f32], value: f32) {
    for (o, w) in out.iter_mut().zip(row) {
        *o += w * value;
    }
}

fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut out: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f32 = out.iter().sum();
    for p in &mut out {
        *p /= sum;
    }
    out
}

/// The (distinct) words with the largest positive weight for category `best`, at most three.
fn heaviest_words(normalized: &str, per_word: &[f32], n: usize, best: usize) -> Vec<String> {
    let mut ranked: Vec<(f32, &str)> = words(normalized)
        .enumerate()
        .map(|(i, word)| (per_word[i * n + best], word))
        .filter(|(weight, _)| *weight > 0.0)
        .collect();
    // Stable, so equal weights keep message order.
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out: Vec<String> = Vec::with_capacity(3);
    for (_, word) in ranked {
        if out.len() == 3 {
            break;
        }
        if !out.iter().any(|w| w == word) {
            out.push(word.to_owned());
        }
    }
    out
}

fn words(normalized: &str) -> impl Iterator<Item = &str> {
    normalized.split(' ').filter(|w| !w.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Features

/// How the text becomes features and how naive Bayes weighs them. One fixed set is used
/// ([`Params::DEFAULT`], chosen on the development set); the others exist for the measurements
/// in `dev_set_figures`.
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
        ngram_weight: 0.5,
        min_count: 1,
        max_share: 0.04,
        alpha: 0.01,
        balance: 1.0,
    };
}

/// Where a feature came from, so its weight can be credited to words.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// The word at this index (the word itself or one of its n-grams).
    Word(usize),
    /// The pair of words starting at this index.
    Pair(usize),
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

/// Calls `emit(hash, origin, value)` for every feature of `normalized`, repeats included.
fn for_each_feature(normalized: &str, params: &Params, mut emit: impl FnMut(u64, Origin, f32)) {
    let mut previous: Option<&str> = None;
    for (i, word) in words(normalized).enumerate() {
        if params.word_weight > 0.0 {
            let hash = Fnv::kind(KIND_WORD).bytes(word.as_bytes()).0;
            emit(hash, Origin::Word(i), params.word_weight);
        }
        if let Some(previous) = previous
            && params.pair_weight > 0.0
        {
            let hash = Fnv::kind(KIND_PAIR)
                .bytes(previous.as_bytes())
                .byte(b' ')
                .bytes(word.as_bytes())
                .0;
            emit(hash, Origin::Pair(i - 1), params.pair_weight);
        }
        if params.ngram_weight > 0.0 {
            char_ngrams(word, params.ngram_min, params.ngram_max, |hash| {
                emit(hash, Origin::Word(i), params.ngram_weight);
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

/// Open addressing from feature hash to row, linear probing, at most half full. Lookups of
/// features the model never saw (most of a message's n-grams) end at the first empty slot.
///
/// A slot is 8 bytes, a 32-bit fingerprint of the hash and the row, so a probe is one memory
/// access. The slot is chosen by other bits of the hash than the fingerprint, so an unseen
/// feature is mistaken for a stored one only if it lands in the same short probe run *and* has
/// the same 32-bit fingerprint: about once in two billion lookups, and then it adds one small
/// weight row.
#[derive(Debug)]
struct FeatureTable {
    /// (fingerprint, row); fingerprint 0 marks an empty slot.
    slots: Vec<(u32, u32)>,
    shift: u32,
}

impl FeatureTable {
    fn new(hashes: &[u64]) -> FeatureTable {
        let capacity = (hashes.len() * 2).next_power_of_two().max(16);
        let mut table = FeatureTable {
            slots: vec![(0, 0); capacity],
            shift: 64 - capacity.trailing_zeros(),
        };
        let mask = capacity - 1;
        for (row, &hash) in hashes.iter().enumerate() {
            let (mut at, key) = table.place(hash);
            while table.slots[at].0 != 0 && table.slots[at].0 != key {
                at = (at + 1) & mask;
            }
            // Row counts stay far below u32::MAX: a row per distinct feature of the examples.
            table.slots[at] = (key, u32::try_from(row).unwrap_or(u32::MAX));
        }
        table
    }

    /// The home slot, from the high bits of a multiplicative mix (FNV's low bits are its
    /// weakest), and the fingerprint, from the hash's low 32 bits (never 0).
    #[inline]
    fn place(&self, hash: u64) -> (usize, u32) {
        let home = (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize;
        (home, (hash as u32).max(1))
    }

    #[inline]
    fn get(&self, hash: u64) -> Option<usize> {
        let (mut at, key) = self.place(hash);
        let mask = self.slots.len() - 1;
        loop {
            match self.slots[at] {
                (0, _) => return None,
                (k, row) if k == key => return Some(row as usize),
                _ => at = (at + 1) & mask,
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

/// Trains on examples that passed [`check`].
fn fit(examples: &[Example], categories: Vec<Category>, params: &Params) -> Classifier {
    let prepared = prepare(examples, &categories, params);
    let (bias, weights) = naive_bayes(&prepared, categories.len(), params);
    finish(categories, params, &prepared, bias, weights)
}

fn prepare(examples: &[Example], categories: &[Category], params: &Params) -> Prepared {
    // FxHashMap only maps hash → id here; nothing depends on its iteration order.
    let mut ids: FxHashMap<u64, u32> = FxHashMap::default();
    let mut hashes: Vec<u64> = Vec::new();
    let mut doc_count: Vec<u32> = Vec::new();
    let mut docs: Vec<Sparse> = Vec::with_capacity(examples.len());
    let mut features: Vec<(u32, f32)> = Vec::new();
    let mut text = String::new();
    for example in examples {
        let class = categories
            .iter()
            .position(|c| *c == example.category)
            .unwrap_or(0);
        features.clear();
        let mut squares = 0.0f32;
        normalize_into(&example.text, &mut text);
        for_each_feature(&text, params, |hash, _, value| {
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

/// Centres the bias and the rows, drops the rare features and builds the lookup table.
fn finish(
    categories: Vec<Category>,
    params: &Params,
    prepared: &Prepared,
    mut bias: Vec<f32>,
    mut weights: Vec<f32>,
) -> Classifier {
    let n = categories.len();
    centre(&mut bias);
    let mut kept_hashes = Vec::new();
    let mut kept = Vec::new();
    // A feature in more than `max_share` of all examples ("ik", "the", "<de>") says little about
    // any one category, yet on few examples naive Bayes lets it tip a guess: it is dropped.
    // Only on a set large enough for "common" to mean something: in a handful of examples every
    // feature is in more than 4% of them.
    let most = if prepared.docs.len() >= 500 {
        (params.max_share * prepared.docs.len() as f32).ceil() as u32
    } else {
        u32::MAX
    };
    for (id, row) in weights.chunks_exact_mut(n).enumerate() {
        let count = prepared.doc_count[id];
        if count >= params.min_count && count <= most {
            centre(row);
            kept_hashes.push(prepared.hashes[id]);
            kept.extend_from_slice(row);
        }
    }
    Classifier {
        categories,
        params: *params,
        bias,
        table: FeatureTable::new(&kept_hashes),
        weights: kept,
    }
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
    let weights = counts
        .chunks_exact(n)
        .flat_map(|row| {
            row.iter()
                .zip(&denominators)
                .map(|(c, d)| ((c + alpha).ln() - d) as f32)
        })
        .collect();
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
    hasher.update(b"webcare-classifier-1\0");
    for example in examples {
        hasher.update(example.category.as_str().as_bytes());
        hasher.update([0]);
        hasher.update((example.text.len() as u64).to_le_bytes());
        hasher.update(example.text.as_bytes());
    }
    hasher.finalize().into()
}

mod cache {
    use super::*;

    /// Enough for the default rulebook, a candidate and a few test rulebooks; each entry is a
    /// few megabytes at most.
    pub(super) const CAPACITY: usize = 8;

    pub(super) type Slot = Arc<OnceLock<Arc<Classifier>>>;

    #[derive(Default)]
    pub(super) struct Cache {
        slots: HashMap<[u8; 32], Slot>,
        /// Oldest first, for eviction.
        order: VecDeque<[u8; 32]>,
    }

    impl Cache {
        /// The slot for `key`; a new, empty one (evicting the oldest when full) if it is not
        /// cached.
        pub(super) fn slot(&mut self, key: [u8; 32]) -> Slot {
            if let Some(slot) = self.slots.get(&key) {
                return Arc::clone(slot);
            }
            if self.order.len() >= CAPACITY
                && let Some(oldest) = self.order.pop_front()
            {
                self.slots.remove(&oldest);
            }
            let slot = Slot::default();
            self.slots.insert(key, Arc::clone(&slot));
            self.order.push_back(key);
            slot
        }

        #[cfg(test)]
        pub(super) fn len(&self) -> usize {
            self.slots.len()
        }
    }

    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();

    /// The process-wide slot for `key`. The lock is held only to find the slot; training
    /// happens in the slot's `OnceLock`, so different example sets train in parallel and the
    /// same set trains once.
    pub(super) fn slot(key: [u8; 32]) -> Slot {
        // A panic while the lock was held cannot leave the cache in a state that matters: at
        // worst a slot is missing and its examples are trained again.
        CACHE
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .slot(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    fn example(text: &str, category: Category) -> Example {
        Example {
            text: text.to_owned(),
            category,
            topic: None,
            lang: Some("nl".to_owned()),
            line: 1,
        }
    }

    /// A small hand-made Dutch set: none of the test messages below is in it.
    fn hand_made() -> Vec<Example> {
        use Category::*;
        let rows: &[(&str, Category)] = &[
            (
                "mijn rijbewijs is verlopen hoe vraag ik een nieuw rijbewijs aan",
                Question,
            ),
            ("hoe lang duurt het aanvragen van een rijbewijs", Question),
            ("wat kost een nieuw paspoort", Question),
            (
                "ik wil een paspoort aanvragen wanneer kan ik langskomen",
                Question,
            ),
            ("wanneer wordt het afval opgehaald", Question),
            ("zijn jullie zaterdag open", Question),
            ("brand in de flat aan de kade er komt veel rook uit", Crisis),
            ("de dijk breekt door het water stroomt de polder in", Crisis),
            (
                "overstroming in de straat het water staat in de huizen",
                Crisis,
            ),
            ("er is een gaslek bij de school ruik overal gas", Crisis),
            (
                "ik teken bezwaar aan tegen het besluit over de vergunning",
                Legal,
            ),
            (
                "wij gaan in beroep tegen de beslissing van de gemeente",
                Legal,
            ),
            (
                "mijn advocaat neemt contact op over de aansprakelijkheid",
                Legal,
            ),
            ("ik stel de gemeente aansprakelijk voor de schade", Legal),
            ("lantaarnpaal kapot in de straat", Report),
            ("losliggende stoeptegel op de stoep voor mijn huis", Report),
            ("volle afvalbak in het park graag legen", Report),
            ("kapotte lantaarn bij de speeltuin", Report),
        ];
        rows.iter().map(|(t, c)| example(t, *c)).collect()
    }

    fn trained() -> Classifier {
        let examples = hand_made();
        let categories = check(&examples).expect("valid examples");
        fit(&examples, categories, &Params::DEFAULT)
    }

    #[test]
    fn fnv_1a_matches_its_specification() {
        // Reference values of 64-bit FNV-1a; if these change, every stored decision would too.
        assert_eq!(Fnv(Fnv::OFFSET).bytes(b"").0, 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv(Fnv::OFFSET).bytes(b"a").0, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv(Fnv::OFFSET).bytes(b"foobar").0, 0x8594_4171_f739_67e8);
    }

    #[test]
    fn ngrams_are_padded_and_counted_by_characters() {
        let mut ascii = 0;
        char_ngrams("pas", 3, 5, |_| ascii += 1);
        // "<pas>": five units give 3 trigrams, 2 four-grams and 1 five-gram.
        assert_eq!(ascii, 6);
        let mut accented = Vec::new();
        char_ngrams("мир", 3, 5, |h| accented.push(h));
        assert_eq!(accented.len(), 6);
        let mut expected = Fnv::kind(KIND_NGRAM).bytes("<м".as_bytes());
        expected = expected.bytes("и".as_bytes());
        assert_eq!(accented[0], expected.0, "first trigram is `<ми`");
    }

    #[test]
    fn two_trainings_give_identical_guesses() {
        let first = trained();
        let second = trained();
        assert_eq!(first.weights.len(), second.weights.len());
        assert!(
            first
                .weights
                .iter()
                .zip(&second.weights)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        for text in [
            "mn rijbewjis is weg",
            "brand bij de dijk",
            "",
            "lantaarnpaal",
        ] {
            let (a, b) = (first.guess(text), second.guess(text));
            assert_eq!(a, b, "{text}");
            let bits = |g: &Guess| {
                g.probabilities
                    .iter()
                    .map(|p| p.1.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&a), bits(&b), "{text}");
        }
    }

    #[test]
    fn typos_inflections_and_compounds_share_features_with_their_words() {
        let classifier = trained();
        let examples = hand_made();
        let words_only = fit(
            &examples,
            check(&examples).expect("valid examples"),
            &Params {
                ngram_weight: 0.0,
                ..Params::DEFAULT
            },
        );
        for (text, expected) in [
            ("mn rijbewjis is gestolen", Category::Question),
            ("paspoortaanvraag", Category::Question),
            ("dijkdoorbraak", Category::Crisis),
            ("beroepen ingesteld", Category::Legal),
            ("bezwaarschrift", Category::Legal),
            ("brandje gezien", Category::Crisis),
            ("stoeptegels los", Category::Report),
        ] {
            let guess = classifier.guess(&normalize(text));
            let without = words_only.guess(&normalize(text));
            assert_eq!(guess.category, expected, "{text}: {guess:?}");
            // Well above the 1 in 4 of a message with no known feature.
            assert!(guess.score > 0.5, "{text}: {guess:?}");
            // And it is the n-grams that carry it: words and pairs alone know nothing of these.
            assert!(
                without.category != expected || without.score < 0.3,
                "{text} without n-grams: {without:?}"
            );
        }
    }

    #[test]
    fn words_come_from_the_message_and_name_what_weighed() {
        let classifier = trained();
        let text = normalize("Help, er is brand in ons gebouw!");
        let guess = classifier.guess(&text);
        assert_eq!(guess.category, Category::Crisis);
        assert!(
            !guess.words.is_empty() && guess.words.len() <= 3,
            "{guess:?}"
        );
        assert!(
            guess.words.iter().all(|w| text.split(' ').any(|t| t == w)),
            "{guess:?}"
        );
        assert_eq!(guess.words[0], "brand", "{guess:?}");
        // Distinct, even when a word repeats.
        let guess = classifier.guess("brand brand brand brand");
        assert_eq!(guess.words, vec!["brand".to_owned()]);
        assert!(classifier.guess("").words.is_empty());
    }

    #[test]
    fn probabilities_cover_the_trained_categories() {
        let classifier = trained();
        assert_eq!(
            classifier.categories(),
            &[
                Category::Question,
                Category::Report,
                Category::Legal,
                Category::Crisis
            ]
        );
        let guess = classifier.guess("paspoort verlopen");
        let total: f32 = guess.probabilities.iter().map(|p| p.1).sum();
        assert!((total - 1.0).abs() < 1e-4, "{guess:?}");
        assert_eq!(guess.probability(Category::Spam), 0.0);
        assert_eq!(guess.probability(guess.category), guess.score);
        assert!(guess.score > 0.25 && guess.score <= 1.0);
    }

    #[test]
    fn training_refuses_what_it_cannot_learn_from() {
        assert_eq!(Classifier::train(&[]).err(), Some(TrainError::NoExamples));
        let one = vec![example("a", Category::Spam), example("b", Category::Spam)];
        let error = Classifier::train(&one).err();
        assert_eq!(
            error,
            Some(TrainError::OneCategory {
                category: Category::Spam
            })
        );
        assert!(
            error
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("`spam`")
        );
        let mut unknown = hand_made();
        unknown[3].category = Category::Unknown;
        unknown[3].line = 4;
        assert_eq!(
            Classifier::train(&unknown).err(),
            Some(TrainError::UnknownLabel { line: 4 })
        );
    }

    #[test]
    fn identical_examples_are_trained_once_per_process() {
        let examples = hand_made();
        let a = Classifier::train(&examples).expect("trains");
        let b = Classifier::train(&examples).expect("trains");
        assert!(Arc::ptr_eq(&a, &b));
        let mut other = hand_made();
        other[0].text.push_str(" graag");
        let c = Classifier::train(&other).expect("trains");
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(a.guess("brand").category, c.guess("brand").category);
    }

    #[test]
    fn the_cache_stays_bounded_and_evicts_the_oldest() {
        let mut cache = cache::Cache::default();
        let first = cache.slot([0; 32]);
        for i in 1..=20u8 {
            cache.slot([i; 32]);
        }
        assert_eq!(cache.len(), cache::CAPACITY);
        assert!(
            !Arc::ptr_eq(&first, &cache.slot([0; 32])),
            "the oldest was evicted"
        );
        let newest = cache.slot([20; 32]);
        assert!(Arc::ptr_eq(&newest, &cache.slot([20; 32])));
    }

    // -----------------------------------------------------------------------------------------
    // The model naive Bayes was measured against

    /// SplitMix64: a tiny generator with a fixed seed, for the one shuffle per epoch.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }
    }

    /// Softmax regression by SGD with L2, in a seeded order: `rate` the initial step, `l2`
    /// the regularisation per example, `balance` from 0 (examples weigh the same) to 1 (every
    /// category weighs the same in total). The L2 shrink of every weight at every step is
    /// lazy: weights are `scale × stored`, and shrinking multiplies `scale` alone.
    #[derive(Debug, Clone, Copy)]
    struct Logistic {
        epochs: usize,
        rate: f32,
        l2: f32,
        balance: f32,
    }

    fn fit_logistic(
        examples: &[Example],
        categories: Vec<Category>,
        params: &Params,
        lr: Logistic,
    ) -> Classifier {
        let prepared = prepare(examples, &categories, params);
        let n = categories.len();
        let docs = &prepared.docs;
        let mut stored = vec![0.0f32; prepared.hashes.len() * n];
        let mut scale = 1.0f32;
        let mut bias = vec![0.0f32; n];
        let mut per_class = vec![0usize; n];
        for doc in docs {
            per_class[doc.class] += 1;
        }
        let mean = docs.len() as f32 / n as f32;
        let class_weight: Vec<f32> = per_class
            .iter()
            .map(|&c| (mean / c.max(1) as f32).powf(lr.balance))
            .collect();
        let mut order: Vec<usize> = (0..docs.len()).collect();
        let mut random = SplitMix(0x5745_4243_4152_4531);
        let mut scores = vec![0.0f32; n];
        let mut step = 0.0f32;
        for _ in 0..lr.epochs {
            for i in (1..order.len()).rev() {
                order.swap(i, random.below(i + 1));
            }
            for &d in &order {
                let doc = &docs[d];
                let learning = lr.rate / (1.0 + lr.rate * lr.l2 * step);
                step += 1.0;
                scores.copy_from_slice(&bias);
                for &(id, value) in &doc.features {
                    let row = &stored[id as usize * n..(id as usize + 1) * n];
                    add_scaled(&mut scores, row, value * scale);
                }
                let probabilities = softmax(&scores);
                let weight = class_weight[doc.class];
                for (k, s) in scores.iter_mut().enumerate() {
                    let target = if k == doc.class { 1.0 } else { 0.0 };
                    *s = (probabilities[k] - target) * weight;
                }
                scale *= 1.0 - learning * lr.l2;
                if scale < 1e-6 {
                    for w in &mut stored {
                        *w *= scale;
                    }
                    scale = 1.0;
                }
                for &(id, value) in &doc.features {
                    let row = &mut stored[id as usize * n..(id as usize + 1) * n];
                    add_scaled(row, &scores, -learning * value / scale);
                }
                add_scaled(&mut bias, &scores, -learning);
            }
        }
        for w in &mut stored {
            *w *= scale;
        }
        finish(categories, params, &prepared, bias, stored)
    }

    // -----------------------------------------------------------------------------------------
    // Measuring on the development set

    fn read_examples(path: &std::path::Path) -> Vec<Example> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let file = crate::rulebook::source::SourceFile {
            path: path.to_owned(),
            text,
        };
        crate::examples::parse_examples(&file)
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
    }

    fn jsonl_in(dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.extension().is_some_and(|x| x == "jsonl")
                            && p.file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.starts_with(prefix))
                    })
                    .collect()
            })
            .unwrap_or_default();
        paths.sort();
        paths
    }

    /// The training files: the rulebook's examples and, while it is kept outside the
    /// repository, the Dutch training set (its parts while its writer is still at work).
    fn training_files() -> Vec<std::path::PathBuf> {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/examples");
        jsonl_in(&repo, "")
    }

    struct Figures {
        macro_f1: f64,
        critical_recall: f64,
        accuracy: f64,
        table: String,
    }

    const CRITICAL: [Category; 5] = [
        Category::Press,
        Category::Legal,
        Category::Crisis,
        Category::Distress,
        Category::Abuse,
    ];

    fn measure(classifier: &Classifier, dev: &[Example]) -> Figures {
        use std::fmt::Write;
        let mut pairs = Vec::with_capacity(dev.len());
        let mut guesses = Vec::with_capacity(dev.len());
        let texts: Vec<String> = dev.iter().map(|e| normalize(&e.text)).collect();
        let started = std::time::Instant::now();
        for text in &texts {
            guesses.push(classifier.guess(text));
        }
        let per_guess = started.elapsed() / texts.len().max(1) as u32;
        for (example, guess) in dev.iter().zip(&guesses) {
            pairs.push((example, guess.category));
        }
        // Calibration: mean log loss, and the expected calibration error over ten bins of the
        // winning score (how far "0.8 sure" is from being right 80% of the time).
        let log_loss = dev
            .iter()
            .zip(&guesses)
            .map(|(e, g)| -f64::from(g.probability(e.category).max(1e-7)).ln())
            .sum::<f64>()
            / dev.len().max(1) as f64;
        let mut bins = [(0usize, 0.0f64, 0usize); 10];
        for (e, g) in dev.iter().zip(&guesses) {
            let bin = ((g.score * 10.0) as usize).min(9);
            bins[bin].0 += 1;
            bins[bin].1 += f64::from(g.score);
            bins[bin].2 += usize::from(g.category == e.category);
        }
        let ece = bins
            .iter()
            .map(|(_, sum, right)| (sum - *right as f64).abs())
            .sum::<f64>()
            / dev.len().max(1) as f64;
        let mut table = String::from("category      n  precision  recall     F1\n");
        let (mut f1_sum, mut present) = (0.0, 0);
        for category in Category::ALL {
            let truth = pairs.iter().filter(|(e, _)| e.category == category).count();
            let said = pairs.iter().filter(|(_, g)| *g == category).count();
            let right = pairs
                .iter()
                .filter(|(e, g)| e.category == category && *g == category)
                .count();
            if truth == 0 && said == 0 {
                continue;
            }
            let precision = if said > 0 {
                right as f64 / said as f64
            } else {
                0.0
            };
            let recall = if truth > 0 {
                right as f64 / truth as f64
            } else {
                0.0
            };
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            if truth > 0 {
                f1_sum += f1;
                present += 1;
            }
            let _ = writeln!(
                table,
                "{:<11} {truth:>4}  {precision:>9.3}  {recall:>6.3}  {f1:>5.3}",
                category.as_str()
            );
        }
        let critical: Vec<_> = pairs
            .iter()
            .filter(|(e, _)| CRITICAL.contains(&e.category))
            .collect();
        let critical_right = critical.iter().filter(|(e, g)| e.category == *g).count();
        // Critical messages guessed as another critical category still reach a person.
        let critical_kept = critical
            .iter()
            .filter(|(_, g)| CRITICAL.contains(g))
            .count();
        let mut languages: Vec<&str> = dev.iter().filter_map(|e| e.lang.as_deref()).collect();
        languages.sort_unstable();
        languages.dedup();
        let mut by_language = String::new();
        for lang in languages {
            let of: Vec<_> = pairs
                .iter()
                .filter(|(e, _)| e.lang.as_deref() == Some(lang))
                .collect();
            let right = of.iter().filter(|(e, g)| e.category == *g).count();
            let _ = write!(by_language, " {lang} {right}/{}", of.len());
        }
        let _ = writeln!(
            table,
            "critical {critical_right}/{} right, {critical_kept} guessed critical; by language:{by_language}",
            critical.len()
        );
        let right = pairs.iter().filter(|(e, g)| e.category == *g).count();
        let _ = writeln!(
            table,
            "log loss {log_loss:.3}, calibration error {ece:.3}, {per_guess:.2?} per guess"
        );
        Figures {
            macro_f1: f1_sum / f64::from(present.max(1)),
            critical_recall: critical_right as f64 / critical.len().max(1) as f64,
            accuracy: right as f64 / pairs.len().max(1) as f64,
            table,
        }
    }

    /// Trains on the training files and prints per-category precision, recall and F1 on the
    /// development set, which is never trained on. With `CLASSIFIER_SWEEP=1` it also compares
    /// other models and features. Run in release:
    /// `cargo test --release -p webcare-engine --lib classifier::tests::dev_set_figures -- --ignored --nocapture`
    #[test]
    #[ignore = "measures on the development set; for tuning, not for CI"]
    fn dev_set_figures() {
        // `CLASSIFIER_DEV=file.jsonl` measures on another labelled set.
        let dev_path = std::env::var_os("CLASSIFIER_DEV").map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/eval/dev.jsonl"),
            std::path::PathBuf::from,
        );
        let dev_path = dev_path.as_path();
        let files = training_files();
        let train: Vec<Example> = files.iter().flat_map(|f| read_examples(f)).collect();
        println!("training on {} examples from {files:?}", train.len());
        let dev = read_examples(dev_path);
        assert!(
            !dev.is_empty(),
            "no development set at {}",
            dev_path.display()
        );
        let categories = check(&train).expect("trainable");
        let mut variants = vec![("default".to_owned(), Params::DEFAULT, None)];
        if std::env::var_os("CLASSIFIER_SWEEP").is_some() {
            variants.extend(sweep());
        }
        for (name, params, logistic) in variants {
            let started = std::time::Instant::now();
            let classifier = match logistic {
                None => fit(&train, categories.clone(), &params),
                Some(lr) => fit_logistic(&train, categories.clone(), &params, lr),
            };
            let took = started.elapsed();
            let figures = measure(&classifier, &dev);
            println!(
                "\n== {name}: macro F1 {:.3}, critical recall {:.3}, accuracy {:.3}, trained in {took:.2?}, {} features\n{params:?} {logistic:?}\n{}",
                figures.macro_f1,
                figures.critical_recall,
                figures.accuracy,
                classifier.weights.len() / classifier.categories.len(),
                figures.table
            );
        }
    }

    /// Naive Bayes around the default, other features, and logistic regression.
    fn sweep() -> Vec<(String, Params, Option<Logistic>)> {
        let d = Params::DEFAULT;
        let mut out = Vec::new();
        for (min, max) in [(3, 5), (3, 4), (4, 4)] {
            for ngram_weight in [1.0, 0.5] {
                for alpha in [0.01, 0.003] {
                    for balance in [0.5, 1.0] {
                        let params = Params {
                            ngram_min: min,
                            ngram_max: max,
                            ngram_weight,
                            alpha,
                            balance,
                            ..d
                        };
                        out.push((
                            format!(
                                "nb ngrams {min}-{max} x{ngram_weight} alpha {alpha} balance {balance}"
                            ),
                            params,
                            None,
                        ));
                    }
                }
            }
        }
        for (variant, params) in [
            (
                "no ngrams",
                Params {
                    ngram_weight: 0.0,
                    ..d
                },
            ),
            (
                "no pairs",
                Params {
                    pair_weight: 0.0,
                    ..d
                },
            ),
            ("min count 2", Params { min_count: 2, ..d }),
        ] {
            out.push((format!("nb {variant}"), params, None));
        }
        for (epochs, rate, l2, balance) in [
            (12, 0.5, 1e-5, 0.5),
            (12, 0.5, 1e-5, 1.0),
            (20, 1.0, 1e-6, 1.0),
            (40, 1.0, 1e-6, 1.0),
            (40, 1.0, 1e-6, 0.5),
        ] {
            let lr = Logistic {
                epochs,
                rate,
                l2,
                balance,
            };
            out.push((format!("logistic {lr:?}"), d, Some(lr)));
        }
        out
    }
}
