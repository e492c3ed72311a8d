//! A message read once by a model: every feature hashed and looked up in the model's table,
//! kept in the order a guess adds them.
//!
//! The critical guess scores the whole message and then each of its sentences, and a
//! sentence's words are words of the message; hashing and looking up every word a second
//! time was most of what a sentence cost. A sentence found among the message's words is
//! scored from the lookups already made, with the same arithmetic in the same order as
//! scoring it alone: a guess must not change in its last bit, because a probability sitting
//! at a script's bar decides a message. A sentence that is not a run of the message's words
//! (normalisation can differ at an edge) is scored alone, as before.

use rustc_hash::FxHashMap;

use super::{FeatureTable, Fnv, KIND_PAIR, Params, char_ngrams, word_hash, words};

/// No row: the model never saw the feature.
const NONE: u32 = u32::MAX;

/// Four classes' weights: a model's rows are kept as whole groups of four, the last padded
/// with zeros, so that adding a row is a fixed number of four-wide adds. A guess adds about
/// seventy rows; with the row's length known only at run time, finding and bounds-checking
/// the row and the remainder cost more than the adds themselves.
pub(super) type Lanes = [f32; 4];

/// A model's bias and one row of weights per kept feature, `classes` wide, padded to
/// [`Lanes`]. A padding lane is zero in every row and in the bias, so it never reaches a
/// real class's sum; each real lane is added exactly as one float at a time would be.
#[derive(Debug)]
pub(super) struct Rows {
    classes: usize,
    lanes: usize,
    bias: Vec<Lanes>,
    weights: Vec<Lanes>,
}

impl Rows {
    /// From `bias` (one per class) and `weights` (`bias.len()` per row, row after row).
    pub(super) fn new(bias: &[f32], weights: &[f32]) -> Rows {
        let classes = bias.len();
        let lanes = classes.div_ceil(4).max(1);
        // Into a buffer sized once: a vector per row, collected, cost a twentieth of loading a
        // rulebook.
        let pad_into = |out: &mut Vec<[f32; 4]>, values: &[f32]| {
            let start = out.len();
            out.resize(start + lanes, [0.0f32; 4]);
            out[start..].as_flattened_mut()[..values.len()].copy_from_slice(values);
        };
        let mut padded_bias = Vec::with_capacity(lanes);
        pad_into(&mut padded_bias, bias);
        let mut padded = Vec::with_capacity(weights.len() / classes.max(1) * lanes);
        for values in weights.chunks_exact(classes.max(1)) {
            pad_into(&mut padded, values);
        }
        Rows {
            classes,
            lanes,
            bias: padded_bias,
            weights: padded,
        }
    }

    /// How many rows (kept features) there are.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.weights.len() / self.lanes
    }

    /// Row `r`, one weight per class.
    #[cfg(test)]
    pub(super) fn row(&self, r: usize) -> &[f32] {
        &self.weights[r * self.lanes..(r + 1) * self.lanes].as_flattened()[..self.classes]
    }

    #[cfg(test)]
    pub(super) fn bias(&self) -> &[f32] {
        &self.bias.as_flattened()[..self.classes]
    }
}

/// What one word contributes, apart from the pairs it is in.
#[derive(Debug, Clone, Copy)]
struct WordFeatures {
    /// Byte range in the text.
    start: u32,
    end: u32,
    /// The row of the word itself, or [`NONE`].
    row: u32,
    /// The range of its known n-grams' rows, in order: in the vocabulary's
    /// [`Vocabulary::ngram_rows`] when `known`, else in [`Lookups::ngram_rows`].
    ngrams: (u32, u32),
    known: bool,
    /// How many n-grams it has, known or not: every one counts in the message's length.
    ngram_count: u32,
    /// For a known word, where its [`Vocabulary::solo`] weights start.
    solo: u32,
}

/// The rows a text's features found in one table.
#[derive(Debug)]
pub(super) struct Lookups<'v> {
    words: Vec<WordFeatures>,
    /// The row of the pair of words `i` and `i + 1`, or [`NONE`].
    pairs: Vec<u32>,
    /// The n-gram rows of the words the vocabulary did not know.
    ngram_rows: Vec<u32>,
    /// The vocabulary's, where a known word's n-gram rows are: read there, not copied.
    known_rows: &'v [u32],
    /// The vocabulary's sums of each known word's own features ([`Vocabulary::solo`]).
    solo: &'v [Lanes],
}

/// A word of the examples: its rows, and the start of the hash of a pair it begins.
#[derive(Debug, Clone, Copy)]
struct Known {
    features: WordFeatures,
    /// FNV of the pair kind, the word and the space: the hash of a pair it begins goes on
    /// from here with the next word's bytes.
    pair_prefix: Fnv,
}

/// The rows of every word the examples use, looked up when the model is trained: most words
/// of a message are among them, and hashing a word into its n-grams and looking each up was
/// most of a guess. Keyed by the word itself, so a word is never taken for another.
#[derive(Debug, Default)]
pub(super) struct Vocabulary {
    /// Each word's index in `known`: its id, which the lexicon learns
    /// ([`crate::lexicon::Lexicon::learn_vocabulary`]) so that a message's words are looked up
    /// once for both.
    words: FxHashMap<Box<str>, u32>,
    known: Vec<Known>,
    ngram_rows: Vec<u32>,
    /// Per known word, the weights its own features add up to (its word row, then its n-gram
    /// rows, from zero, in the order a guess adds them), `lanes` groups each. A word that
    /// begins a message or follows a pair the model does not know starts from nothing in a
    /// guess, so its sum is exactly this, computed once instead of once per message (the
    /// n-gram rows were most of the adds of a guess).
    solo: Vec<Lanes>,
}

impl Vocabulary {
    /// Every word with its id.
    pub(super) fn ids(&self) -> impl Iterator<Item = (&str, u32)> {
        self.words.iter().map(|(word, id)| (&**word, *id))
    }

    /// Whether `other` has exactly these words, each with the id it has here.
    pub(super) fn same_ids(&self, other: &Vocabulary) -> bool {
        self.words.len() == other.words.len()
            && self
                .words
                .iter()
                .all(|(word, id)| other.words.get(word) == Some(id))
    }

    pub(super) fn new<'w>(
        words: impl Iterator<Item = &'w str>,
        params: &Params,
        table: &FeatureTable,
        rows: &Rows,
    ) -> Vocabulary {
        let mut vocabulary = Vocabulary::default();
        let none = Vocabulary::default();
        for word in words {
            if vocabulary.words.contains_key(word) {
                continue;
            }
            let known = Lookups::new(word, &[], params, table, &none, &[]);
            let Some(features) = known.words.first() else {
                continue;
            };
            let at = vocabulary.ngram_rows.len() as u32;
            vocabulary.ngram_rows.extend_from_slice(&known.ngram_rows);
            let solo = vocabulary.solo.len() as u32;
            vocabulary.solo.extend(known.solo(features, params, rows));
            vocabulary
                .words
                .insert(word.into(), vocabulary.known.len() as u32);
            vocabulary.known.push(Known {
                features: WordFeatures {
                    ngrams: (at, vocabulary.ngram_rows.len() as u32),
                    known: true,
                    solo,
                    ..*features
                },
                pair_prefix: pair_prefix(word),
            });
        }
        vocabulary
    }
}

/// The hash of a pair that `previous` begins, before the second word's bytes.
fn pair_prefix(previous: &str) -> Fnv {
    Fnv::kind(KIND_PAIR).bytes(previous.as_bytes()).byte(b' ')
}

fn row(table: &FeatureTable, hash: u64) -> u32 {
    table.get(hash).map_or(NONE, |r| r as u32)
}

/// The probabilities of every class, the most probable one, and the words that weighed most
/// for it.
pub(super) type Scored = (Vec<f32>, usize, Vec<String>);

impl<'v> Lookups<'v> {
    /// Hashes and looks up every feature of `normalized` once; a word in `vocabulary` takes
    /// its rows from there. The same features in the same order as `for_each_feature` (training).
    /// `ids` are, word by word, the words' ids in `vocabulary` ([`NONE`] for a word it does
    /// not have) when the caller knows them; a word past their end is looked up here.
    /// `ranges` are the words' byte ranges when the caller split the text already, else empty.
    pub(super) fn new(
        normalized: &str,
        ranges: &[(u32, u32)],
        params: &Params,
        table: &FeatureTable,
        vocabulary: &'v Vocabulary,
        ids: &[u32],
    ) -> Lookups<'v> {
        if ranges.is_empty() {
            Lookups::from_words(
                normalized,
                words(normalized),
                params,
                table,
                vocabulary,
                ids,
            )
        } else {
            let split = crate::normalize::words_at(normalized, ranges);
            Lookups::from_words(normalized, split, params, table, vocabulary, ids)
        }
    }

    /// [`Lookups::new`] of `normalized`'s `words`, slices of it.
    fn from_words<'t>(
        normalized: &'t str,
        words: impl Iterator<Item = &'t str>,
        params: &Params,
        table: &FeatureTable,
        vocabulary: &'v Vocabulary,
        ids: &[u32],
    ) -> Lookups<'v> {
        let mut lookups = Lookups {
            words: Vec::with_capacity(normalized.len() / 4 + 1),
            pairs: Vec::with_capacity(normalized.len() / 4 + 1),
            ngram_rows: Vec::new(),
            known_rows: &vocabulary.ngram_rows,
            solo: &vocabulary.solo,
        };
        let base = normalized.as_ptr() as usize;
        // The previous word, and the start of the hash of the pair it begins when known.
        let mut previous: Option<(&str, Option<Fnv>)> = None;
        for (i, word) in words.enumerate() {
            let start = (word.as_ptr() as usize - base) as u32;
            let known = match ids.get(i) {
                Some(&id) => vocabulary.known.get(id as usize),
                None => vocabulary
                    .words
                    .get(word)
                    .and_then(|&id| vocabulary.known.get(id as usize)),
            };
            if let Some((previous, prefix)) = previous {
                lookups.pairs.push(if params.pair_weight > 0.0 {
                    let prefix = prefix.unwrap_or_else(|| pair_prefix(previous));
                    row(table, prefix.bytes(word.as_bytes()).0)
                } else {
                    NONE
                });
            }
            previous = Some((word, known.map(|k| k.pair_prefix)));
            if let Some(known) = known {
                lookups.words.push(WordFeatures {
                    start,
                    end: start + word.len() as u32,
                    ..known.features
                });
                continue;
            }
            let mut features = WordFeatures {
                start,
                end: start + word.len() as u32,
                row: NONE,
                ngrams: (0, 0),
                known: false,
                ngram_count: 0,
                solo: 0,
            };
            let at = lookups.ngram_rows.len() as u32;
            if params.word_weight > 0.0 {
                features.row = row(table, word_hash(word));
            }
            if params.ngram_weight > 0.0 {
                // Room for every n-gram of the message's unknown words, made at the first.
                if lookups.ngram_rows.capacity() == 0 {
                    lookups.ngram_rows.reserve(normalized.len());
                }
                char_ngrams(word, params.ngram_min, params.ngram_max, |hash| {
                    features.ngram_count += 1;
                    let r = row(table, hash);
                    if r != NONE {
                        lookups.ngram_rows.push(r);
                    }
                });
            }
            features.ngrams = (at, lookups.ngram_rows.len() as u32);
            lookups.words.push(features);
        }
        lookups
    }

    /// The weights of the features of the one word read here (a vocabulary word read alone),
    /// added from zero as a guess adds them: the word's row, then its n-grams' rows.
    fn solo(&self, w: &WordFeatures, params: &Params, rows: &Rows) -> Vec<Lanes> {
        let lanes = rows.lanes;
        let mut out = vec![[0.0f32; 4]; lanes];
        let row = |r: u32| &rows.weights[r as usize * lanes..][..lanes];
        if params.word_weight > 0.0 && w.row != NONE {
            add_lanes(&mut out, row(w.row), params.word_weight);
        }
        if params.ngram_weight > 0.0 {
            for &r in self.ngram_rows_of(w) {
                add_lanes(&mut out, row(r), params.ngram_weight);
            }
        }
        out
    }

    pub(super) fn word_count(&self) -> usize {
        self.words.len()
    }

    /// The word at `i`.
    pub(super) fn word<'t>(&self, text: &'t str, i: usize) -> &'t str {
        let w = &self.words[i];
        &text[w.start as usize..w.end as usize]
    }

    /// The rows of the known n-grams of word `w`.
    fn ngram_rows_of(&self, w: &WordFeatures) -> &[u32] {
        let rows = if w.known {
            self.known_rows
        } else {
            &self.ngram_rows
        };
        &rows[w.ngrams.0 as usize..w.ngrams.1 as usize]
    }

    /// Where the words of `part` occur in a row among these words, if they do.
    pub(super) fn find_run(&self, text: &str, part: &str) -> Option<std::ops::Range<usize>> {
        let wanted: Vec<&str> = words(part).collect();
        if wanted.len() > self.words.len() {
            return None;
        }
        (0..=self.words.len() - wanted.len())
            .find(|&at| {
                wanted
                    .iter()
                    .enumerate()
                    .all(|(k, w)| self.word(text, at + k) == *w)
            })
            .map(|at| at..at + wanted.len())
    }

    /// Scores the words `run` of `text` as if they were the whole text: the same features
    /// (pairs only within the run), added in the order `for_each_feature` (training) emits them.
    /// Without `explain`, the words that weighed most are left out (empty): the probabilities
    /// do not depend on them.
    pub(super) fn score(
        &self,
        text: &str,
        run: std::ops::Range<usize>,
        params: &Params,
        rows: &Rows,
        explain: bool,
    ) -> Scored {
        // A model's width is fixed when it is trained; written out for the widths a model of
        // up to 32 classes has, so that the compiler knows how many adds a row takes.
        match rows.lanes {
            1 => self.score_in::<1>(text, run, params, rows, explain),
            2 => self.score_in::<2>(text, run, params, rows, explain),
            3 => self.score_in::<3>(text, run, params, rows, explain),
            4 => self.score_in::<4>(text, run, params, rows, explain),
            5 => self.score_in::<5>(text, run, params, rows, explain),
            6 => self.score_in::<6>(text, run, params, rows, explain),
            7 => self.score_in::<7>(text, run, params, rows, explain),
            8 => self.score_in::<8>(text, run, params, rows, explain),
            _ => self.score_in::<0>(text, run, params, rows, explain),
        }
    }

    /// [`Lookups::score`] for rows `L` lanes wide, or any width when `L` is 0.
    fn score_in<const L: usize>(
        &self,
        text: &str,
        run: std::ops::Range<usize>,
        params: &Params,
        rows: &Rows,
        explain: bool,
    ) -> Scored {
        let lanes = if L == 0 { rows.lanes } else { L };
        let first = run.start;
        // Per word and class, the weight of that word's features: summed they are the scores,
        // and the winner's column says which words weighed most.
        let mut per_word = vec![[0.0f32; 4]; run.len() * lanes];
        let mut squares = 0.0f32;
        let row = |r: u32| &rows.weights[r as usize * lanes..][..lanes];
        for i in run.clone() {
            let w = &self.words[i];
            let local = i - first;
            let after_pair = i > first && params.pair_weight > 0.0 && self.pairs[i - 1] != NONE;
            if w.known && !after_pair {
                // Nothing added to this word yet, and no pair to add before its n-grams: its
                // sum is the vocabulary's, made with the same adds in the same order.
                if params.word_weight > 0.0 {
                    let value = params.word_weight;
                    squares += value * value;
                }
                if i > first && params.pair_weight > 0.0 {
                    let value = params.pair_weight;
                    squares += value * value;
                }
                if params.ngram_weight > 0.0 {
                    let value = params.ngram_weight;
                    for _ in 0..w.ngram_count {
                        squares += value * value;
                    }
                }
                per_word[local * lanes..][..lanes]
                    .copy_from_slice(&self.solo[w.solo as usize..][..lanes]);
                continue;
            }
            if params.word_weight > 0.0 {
                let value = params.word_weight;
                squares += value * value;
                if w.row != NONE {
                    add_lanes(&mut per_word[local * lanes..][..lanes], row(w.row), value);
                }
            }
            if i > first && params.pair_weight > 0.0 {
                let value = params.pair_weight;
                squares += value * value;
                let r = self.pairs[i - 1];
                if r != NONE {
                    // A pair of words counts half for each.
                    let row = row(r);
                    add_lanes(
                        &mut per_word[(local - 1) * lanes..][..lanes],
                        row,
                        value * 0.5,
                    );
                    add_lanes(&mut per_word[local * lanes..][..lanes], row, value * 0.5);
                }
            }
            if params.ngram_weight > 0.0 {
                let value = params.ngram_weight;
                for _ in 0..w.ngram_count {
                    squares += value * value;
                }
                let out = &mut per_word[local * lanes..][..lanes];
                for &r in self.ngram_rows_of(w) {
                    add_lanes(out, row(r), value);
                }
            }
        }
        let scale = if squares > 0.0 {
            1.0 / squares.sqrt()
        } else {
            1.0
        };
        let mut scores = rows.bias.clone();
        for word in per_word.chunks_exact(lanes) {
            add_lanes(&mut scores, word, scale);
        }
        let probabilities = softmax(&scores.as_flattened()[..rows.classes]);
        // The first of equal maxima, so ties resolve the same way every time.
        let mut best = 0;
        for (k, p) in probabilities.iter().enumerate() {
            if *p > probabilities[best] {
                best = k;
            }
        }
        let words = if explain {
            heaviest_words(
                run.map(|i| self.word(text, i)),
                per_word.as_flattened(),
                lanes * 4,
                best,
            )
        } else {
            Vec::new()
        };
        (probabilities, best, words)
    }
}

/// `out` += `row` × `value`, lane by lane: each class the same single multiply and add as
/// one at a time, so the same result. Both groups of four are read before one is written,
/// so the compiler need not fear that the row and the sum overlap: four classes are one
/// multiply and one add (written lane by lane in place, the adds were one class at a time).
#[inline(always)]
fn add_lanes(out: &mut [Lanes], row: &[Lanes], value: f32) {
    for (o, w) in out.iter_mut().zip(row) {
        let (a, b) = (*o, *w);
        *o = [
            a[0] + b[0] * value,
            a[1] + b[1] * value,
            a[2] + b[2] * value,
            a[3] + b[3] * value,
        ];
    }
}

/// `out` += `row` × `value`, four lanes at a time (each lane the same single multiply and
/// add as one at a time, so the same result); the tests' trainer adds rows of any length.
#[cfg(test)]
#[inline]
pub(super) fn add_scaled(out: &mut [f32], row: &[f32], value: f32) {
    let mut outs = out.chunks_exact_mut(4);
    let mut rows = row.chunks_exact(4);
    for (o, w) in (&mut outs).zip(&mut rows) {
        o[0] += w[0] * value;
        o[1] += w[1] * value;
        o[2] += w[2] * value;
        o[3] += w[3] * value;
    }
    for (o, w) in outs.into_remainder().iter_mut().zip(rows.remainder()) {
        *o += w * value;
    }
}

pub(super) fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut out: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f32 = out.iter().sum();
    for p in &mut out {
        *p /= sum;
    }
    out
}

/// The (distinct) words with the largest positive weight for category `best`, at most three,
/// heaviest first, the earlier of equal weights first: what sorting every word stably by
/// weight and taking the first three distinct ones gives, without the list and the sort (a
/// fifth of a guess). A word's place is that of its heaviest occurrence, so a later
/// occurrence moves it only when strictly heavier, and a word lighter than the third place
/// (or as light: it comes later) can never enter.
fn heaviest_words<'t>(
    words: impl Iterator<Item = &'t str>,
    per_word: &[f32],
    n: usize,
    best: usize,
) -> Vec<String> {
    let mut top: [(f32, &str); 3] = [(0.0, ""); 3];
    let mut len = 0;
    for (i, word) in words.enumerate() {
        let weight = per_word[i * n + best];
        if weight > 0.0 && (len < 3 || weight > top[2].0) {
            // The slot this word leaves free: its own, a new one, or the lightest word's.
            let free = match top[..len].iter().position(|(_, w)| *w == word) {
                Some(k) if weight <= top[k].0 => continue,
                Some(k) => k,
                None if len < 3 => {
                    len += 1;
                    len - 1
                }
                None => 2,
            };
            let mut k = free;
            while k > 0 && weight > top[k - 1].0 {
                top[k] = top[k - 1];
                k -= 1;
            }
            top[k] = (weight, word);
        }
    }
    top[..len].iter().map(|(_, w)| (*w).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Classifier, Guess, char_ngrams, pair_hash, word_hash, words};
    use crate::examples::Example;
    use crate::normalize::normalize;

    /// The reference: a guess scored feature by feature, the way the classifier scored before it
    /// kept a message's lookups and its examples' words.
    fn scored_alone(c: &Classifier, normalized: &str) -> Guess {
        let n = c.categories.len();
        let word_count = words(normalized).count();
        let mut per_word = vec![0.0f32; word_count * n];
        let mut squares = 0.0f32;
        let add = |out: &mut [f32], row: &[f32], value: f32| {
            for (o, w) in out.iter_mut().zip(row) {
                *o += w * value;
            }
        };
        // Feature by feature in the order they were always emitted: per word the word, the pair
        // it ends (half to each of its words), then its n-grams.
        let p = c.params;
        let mut feature = |hash: u64, value: f32, credit: &[usize]| {
            squares += value * value;
            let Some(row) = c.table.get(hash) else {
                return;
            };
            let row = c.rows.row(row);
            let share = if credit.len() == 2 {
                value * 0.5
            } else {
                value
            };
            for &i in credit {
                add(&mut per_word[i * n..(i + 1) * n], row, share);
            }
        };
        let all: Vec<&str> = words(normalized).collect();
        for (i, word) in all.iter().enumerate() {
            if p.word_weight > 0.0 {
                feature(word_hash(word), p.word_weight, &[i]);
            }
            if i > 0 && p.pair_weight > 0.0 {
                feature(pair_hash(all[i - 1], word), p.pair_weight, &[i - 1, i]);
            }
            if p.ngram_weight > 0.0 {
                let mut hashes = Vec::new();
                char_ngrams(word, p.ngram_min, p.ngram_max, |h| hashes.push(h));
                for h in hashes {
                    feature(h, p.ngram_weight, &[i]);
                }
            }
        }
        let scale = if squares > 0.0 {
            1.0 / squares.sqrt()
        } else {
            1.0
        };
        let mut scores = c.rows.bias().to_vec();
        for word in per_word.chunks_exact(n) {
            for (s, w) in scores.iter_mut().zip(word) {
                *s += w * scale;
            }
        }
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probabilities: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
        let sum: f32 = probabilities.iter().sum();
        for p in &mut probabilities {
            *p /= sum;
        }
        let mut best = 0;
        for (k, p) in probabilities.iter().enumerate() {
            if *p > probabilities[best] {
                best = k;
            }
        }
        let mut ranked: Vec<(f32, &str)> = words(normalized)
            .enumerate()
            .map(|(i, w)| (per_word[i * n + best], w))
            .filter(|(weight, _)| *weight > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut top: Vec<String> = Vec::new();
        for (_, w) in ranked {
            if top.len() < 3 && !top.iter().any(|t| t == w) {
                top.push(w.to_owned());
            }
        }
        Guess {
            category: c.categories[best],
            score: probabilities[best],
            words: top,
            probabilities: c.categories.iter().copied().zip(probabilities).collect(),
        }
    }

    /// The heaviest words as they were found before: every positive weight sorted stably,
    /// the first three distinct words taken.
    fn heaviest_by_sort(words: &[&str], weights: &[f32]) -> Vec<String> {
        let mut ranked: Vec<(f32, &str)> = weights
            .iter()
            .copied()
            .zip(words.iter().copied())
            .filter(|(weight, _)| *weight > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut out: Vec<String> = Vec::new();
        for (_, word) in ranked {
            if out.len() < 3 && !out.iter().any(|w| w == word) {
                out.push(word.to_owned());
            }
        }
        out
    }

    #[test]
    fn the_heaviest_words_are_those_a_stable_sort_gives() {
        let vocabulary = ["dijk", "brand", "gas", "de", "hulp", "nu"];
        let values = [-1.0, 0.0, 0.25, 0.5, 0.5, 1.0, 2.0, 3.0, f32::NAN, 1e-30];
        let mut rng = 11u64;
        let mut next = |bound: u64| {
            rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((rng >> 33) % bound) as usize
        };
        let mut three = 0;
        for _ in 0..50_000 {
            let len = next(14);
            let words: Vec<&str> = (0..len)
                .map(|_| vocabulary[next(vocabulary.len() as u64)])
                .collect();
            let weights: Vec<f32> = (0..len)
                .map(|_| values[next(values.len() as u64)])
                .collect();
            let got = super::heaviest_words(words.iter().copied(), &weights, 1, 0);
            assert_eq!(
                got,
                heaviest_by_sort(&words, &weights),
                "{words:?} {weights:?}"
            );
            three += usize::from(got.len() == 3);
        }
        assert!(three > 10_000, "too few cases with three words: {three}");
    }

    #[test]
    fn a_sentence_guessed_from_the_message_reading_is_the_sentence_guessed_alone() {
        // The default rulebook's examples: a real model, and real messages of several sentences.
        let examples: Vec<Example> = crate::RulebookSource::embedded()
            .examples
            .iter()
            .flat_map(|file| crate::examples::parse_examples(file).expect("the examples parse"))
            .collect();
        let classifier = Classifier::train(&examples).expect("the repository's examples train");
        let mut sentences = 0;
        for example in examples.iter().step_by(7) {
            let whole = normalize(&example.text);
            let reading = classifier.read(&whole);
            // To the last bit: a probability at a script's bar decides.
            assert_eq!(
                reading.guess(),
                scored_alone(&classifier, &whole),
                "{whole}"
            );
            for sentence in example.text.split(['.', '!', '?', '\n', ';']) {
                let part = normalize(sentence);
                let alone = scored_alone(&classifier, &part);
                assert_eq!(reading.guess_part(&part), alone, "`{part}` of `{whole}`");
                let unexplained = reading.guess_part_unexplained(&part);
                assert_eq!(
                    (
                        unexplained.category,
                        unexplained.score,
                        &unexplained.probabilities
                    ),
                    (alone.category, alone.score, &alone.probabilities),
                    "`{part}` of `{whole}` without its words"
                );
                sentences += 1;
            }
        }
        assert!(sentences > 500, "only {sentences} sentences were compared");
        // The topic model reads the examples' words from its own vocabulary: the same guess
        // as hashing every word.
        let topics = classifier
            .topics
            .as_ref()
            .expect("the examples name topics");
        let none = super::Vocabulary::default();
        for example in examples.iter().step_by(7) {
            let text = normalize(&example.text);
            let hashed =
                super::Lookups::new(&text, &[], &classifier.params, &topics.table, &none, &[]);
            let (probabilities, best, words) = hashed.score(
                &text,
                0..hashed.word_count(),
                &classifier.params,
                &topics.rows,
                true,
            );
            let guess = classifier.guess_topic(&text).expect("a topic guess");
            assert_eq!(
                (guess.topic.as_str(), guess.score, &guess.words),
                (topics.ids[best].as_str(), probabilities[best], &words),
                "{text}"
            );
            let all: Vec<f32> = guess.probabilities.iter().map(|(_, p)| *p).collect();
            assert_eq!(all, probabilities, "{text}");
        }
        // A part that is not in the message is scored alone, and words no example uses are
        // hashed as they come.
        let reading = classifier.read("de dijk breekt door");
        let other = normalize("er is een gaslek bij de school");
        assert_eq!(
            reading.guess_part(&other),
            scored_alone(&classifier, &other)
        );
        let unseen =
            normalize("de kastenverazxq is gebrokkeld, bęłkot ляля en de dijk breekt door!");
        let reading = classifier.read(&unseen);
        assert_eq!(reading.guess(), scored_alone(&classifier, &unseen));
        let part = normalize("bęłkot ляля en de dijk");
        assert_eq!(reading.guess_part(&part), scored_alone(&classifier, &part));
    }
}
