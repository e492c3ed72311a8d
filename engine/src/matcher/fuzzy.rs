//! Typos: a message word one letter off a keyword ("rijbewjis", "grofvil") still matches it.
//!
//! People type fast on phones; a rulebook cannot list every misspelling. The allowed distance
//! grows with the keyword: none below 5 letters (too many real words are one letter apart:
//! "pas", "bas", "gas"), 1 from 5 letters, 2 from 9. A swap of two neighbouring letters counts
//! as one edit (optimal string alignment distance), since that is the commonest slip. The
//! first letter must be right: typos there are rare, and allowing them doubles the words a
//! short keyword could be mistaken for.
//!
//! Lookup is symmetric deletion (the SymSpell idea): every keyword is indexed under itself and
//! each string one (or two) deletions away; a message word generates its own deletions, and any
//! shared key makes a candidate that is then checked with the real distance. So a message costs
//! a few hash lookups per word whatever the number of keywords, and nothing is compiled per
//! message.

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};

/// The edits a keyword of `len` letters tolerates.
pub fn allowed_edits(len: usize) -> u8 {
    match len {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// Keywords open to typos, with every spelling the rulebook knows to be a word of its own.
#[derive(Debug, Default)]
pub struct TypoIndex {
    /// Key hash → words (indexes into `words`) indexed under it. A hash collision only adds a
    /// candidate, which the distance check then rejects.
    keys: FxHashMap<u64, Vec<u32>>,
    words: Vec<(Box<str>, u8)>,
    /// Word → its index in `words`, so adding a keyword twice costs a lookup, not a scan
    /// (a scan made 100,000 keywords take minutes to compile).
    ids: FxHashMap<Box<str>, u32>,
    /// Words that are spelled right by definition (every keyword word, the lexicon): never
    /// read as a typo of something else, which also keeps the per-message work small.
    known: FxHashSet<Box<str>>,
    /// The longest indexed word: a longer message word cannot be two edits from any keyword,
    /// and generating its deletions would cost its length squared (a 1 MB "word" is an attack).
    longest: usize,
}

/// Dutch and English inflection endings (plural, past tense, participle, -ing, agent noun).
const INFLECTIONS: [&str; 11] = [
    "s", "es", "e", "en", "n", "ed", "d", "t", "er", "ers", "ing",
];

fn key(bytes: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    bytes.hash(&mut h);
    h.finish()
}

/// Calls `f` with `word` and every string `edits` deletions or fewer away.
fn deletions(word: &[u8], edits: u8, f: &mut impl FnMut(&[u8])) {
    deletions_from(word, edits, 0, f);
}

/// Deletes only at `from` or later, so two deletions are made in one order only (deleting 3
/// then 5 gives what deleting 5 then 3 gives): half the strings at depth two. Words longer
/// than a stack buffer (never a real keyword) take a heap one.
fn deletions_from(word: &[u8], edits: u8, from: usize, f: &mut impl FnMut(&[u8])) {
    f(word);
    if edits == 0 || word.len() <= 1 {
        return;
    }
    let shorter = word.len() - 1;
    let mut stack = [0u8; 64];
    let mut heap = Vec::new();
    let buffer: &mut [u8] = if shorter <= stack.len() {
        &mut stack[..shorter]
    } else {
        heap.resize(shorter, 0);
        &mut heap
    };
    for i in from..word.len() {
        buffer[..i].copy_from_slice(&word[..i]);
        buffer[i..].copy_from_slice(&word[i + 1..]);
        deletions_from(buffer, edits - 1, i, f);
    }
}

impl TypoIndex {
    /// Marks `word` as a correctly spelled word.
    pub fn know(&mut self, word: &str) {
        self.known.insert(word.into());
    }

    /// Whether `word` is a known word with an inflection ending: "reported" is "report" + "ed",
    /// not a typo of the keyword "reporter". (A stemmer cannot tell: it makes "report" of both.)
    fn inflects_a_known_word(&self, word: &str) -> bool {
        INFLECTIONS.iter().any(|ending| {
            word.strip_suffix(ending)
                .is_some_and(|base| base.len() >= 4 && self.known.contains(base))
        })
    }

    /// Indexes a keyword word; returns its id, or `None` when it is too short for typos.
    pub fn add(&mut self, word: &str) -> Option<u32> {
        let edits = allowed_edits(word.len());
        if edits == 0 || !word.bytes().all(|b| b.is_ascii_lowercase()) {
            return None;
        }
        self.know(word);
        if let Some(&existing) = self.ids.get(word) {
            return Some(existing);
        }
        let id = self.words.len() as u32;
        self.words.push((word.into(), edits));
        self.ids.insert(word.into(), id);
        self.longest = self.longest.max(word.len());
        let mut seen = FxHashSet::default();
        deletions(word.as_bytes(), edits, &mut |d| {
            let k = key(d);
            if seen.insert(k) {
                self.keys.entry(k).or_default().push(id);
            }
        });
        Some(id)
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The keyword words `word` is a typo of (ids from [`TypoIndex::add`]), into `out`.
    pub fn lookup(&self, word: &str, out: &mut Vec<u32>) {
        out.clear();
        let bytes = word.as_bytes();
        // A short word is never a typo, also not one letter short of a keyword: "knie" (knee)
        // is a word of its own, not "knife" misspelt.
        if bytes.len() < 5
            || bytes.len() > self.longest + 2
            || !bytes.iter().all(u8::is_ascii_lowercase)
            || self.known.contains(word)
        {
            return;
        }
        // A keyword of 9+ letters may be two edits away, so a word of 7+ letters looks two
        // deletions deep; shorter words can only be one edit from a 5-8 letter keyword.
        let depth = if bytes.len() >= 7 { 2 } else { 1 };
        deletions(bytes, depth, &mut |d| {
            if let Some(ids) = self.keys.get(&key(d)) {
                for &id in ids {
                    if !out.contains(&id) {
                        out.push(id);
                    }
                }
            }
        });
        out.retain(|&id| {
            let (candidate, edits) = &self.words[id as usize];
            candidate.as_bytes()[0] == bytes[0] && distance(candidate.as_bytes(), bytes) <= *edits
        });
        if !out.is_empty() && self.inflects_a_known_word(word) {
            out.clear();
        }
    }

    pub fn word(&self, id: u32) -> &str {
        &self.words[id as usize].0
    }
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring letters each count one.
pub fn distance(a: &[u8], b: &[u8]) -> u8 {
    if a.len().abs_diff(b.len()) > 2 {
        return u8::MAX;
    }
    let width = b.len() + 1;
    let mut rows = vec![0usize; 3 * width];
    for (j, cell) in rows[..width].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        let (cur, prev, prev2) = (i % 3, (i + 2) % 3, (i + 1) % 3);
        rows[cur * width] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[prev * width + j] + 1)
                .min(rows[cur * width + j - 1] + 1)
                .min(rows[prev * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[prev2 * width + j - 2] + 1);
            }
            rows[cur * width + j] = best;
        }
    }
    rows[(a.len() % 3) * width + b.len()].min(usize::from(u8::MAX)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(words: &[&str]) -> TypoIndex {
        let mut index = TypoIndex::default();
        for w in words {
            index.add(w);
        }
        index
    }

    fn typo_of(index: &TypoIndex, word: &str) -> Vec<String> {
        let mut out = Vec::new();
        index.lookup(word, &mut out);
        out.iter().map(|&id| index.word(id).to_owned()).collect()
    }

    #[test]
    fn deletions_reach_every_string_two_deletions_away() {
        let word = b"rijbewijs";
        let mut naive = std::collections::BTreeSet::new();
        naive.insert(word.to_vec());
        for i in 0..word.len() {
            let mut one = word.to_vec();
            one.remove(i);
            for j in 0..one.len() {
                let mut two = one.clone();
                two.remove(j);
                naive.insert(two);
            }
            naive.insert(one);
        }
        let mut made = std::collections::BTreeSet::new();
        deletions(word, 2, &mut |d| {
            made.insert(d.to_vec());
        });
        assert_eq!(made, naive);
    }

    #[test]
    fn distance_counts_a_swap_as_one_edit() {
        assert_eq!(distance(b"rijbewijs", b"rijbewjis"), 1);
        assert_eq!(distance(b"grofvuil", b"grofvil"), 1);
        assert_eq!(distance(b"paspoort", b"paspoord"), 1);
        assert_eq!(distance(b"kitten", b"sitting"), 3);
        assert_eq!(distance(b"abc", b"abc"), 0);
    }

    #[test]
    fn edits_grow_with_the_keyword_and_short_words_never_match() {
        let index = index(&["rijbewijs", "grofvuil", "gas", "brand", "parkeervergunning"]);
        assert_eq!(typo_of(&index, "rijbewjis"), ["rijbewijs"]);
        assert_eq!(
            typo_of(&index, "rjbewis"),
            ["rijbewijs"],
            "two edits at 9+ letters"
        );
        assert_eq!(typo_of(&index, "grofvil"), ["grofvuil"]);
        assert!(
            typo_of(&index, "grfvl").is_empty(),
            "two edits at 8 letters"
        );
        assert!(
            typo_of(&index, "gaz").is_empty(),
            "no typos for short keywords"
        );
        assert_eq!(typo_of(&index, "brnad"), ["brand"]);
        assert!(
            typo_of(&index, "brad").is_empty(),
            "a short word in the message is a word of its own, not a keyword one letter short"
        );
        assert!(
            typo_of(&index, "grand").is_empty(),
            "the first letter must be right"
        );
        assert_eq!(typo_of(&index, "parkeervergunnig"), ["parkeervergunning"]);
    }

    #[test]
    fn a_word_far_longer_than_any_keyword_is_not_looked_up() {
        let index = index(&["rijbewijs"]);
        let huge = "r".repeat(1_000_000);
        assert!(typo_of(&index, &huge).is_empty());
        assert_eq!(
            typo_of(&index, "rijbewijsje"),
            ["rijbewijs"],
            "two letters longer still is"
        );
    }

    #[test]
    fn known_words_are_never_typos_of_another() {
        let mut index = index(&["brand", "brood"]);
        index.know("brandt");
        assert!(typo_of(&index, "brood").is_empty());
        assert!(typo_of(&index, "brandt").is_empty());
        assert_eq!(typo_of(&index, "broot"), ["brood"]);
    }

    #[test]
    fn an_inflection_of_a_known_word_is_not_a_typo() {
        let mut index = index(&["reporter"]);
        assert_eq!(
            typo_of(&index, "reported"),
            ["reporter"],
            "while `report` is unknown"
        );
        index.know("report");
        assert!(typo_of(&index, "reported").is_empty(), "report + ed");
        assert!(typo_of(&index, "reports").is_empty(), "report + s");
        assert_eq!(
            typo_of(&index, "repotrer"),
            ["reporter"],
            "a real typo still is"
        );
    }
}
