//! The keywords' automata: the words written in ASCII in a DFA, the others apart.
//!
//! The scan reads every byte of every message, and a contiguous NFA (what `aho-corasick`
//! chooses for thousands of words) follows failure links and searches sparse states at most
//! of them: about 55 instructions a byte at 10,000 keywords (session 15, callgrind). A DFA
//! takes one table read a byte, but its table is a row per state as wide as the alphabet, and
//! words in other scripts (the patterns' literals in Cyrillic and Arabic, a keyword in Greek)
//! bring dozens of byte classes: one DFA of everything took 72 MB for the default rulebook
//! with 10,000 keywords more. The ASCII words alone (letters, digits, the space) need under
//! 64 classes, so they get the DFA (27 MB there, 5 MB for the default rulebook), and the
//! others their own automaton, run only on a message that has a byte outside ASCII (no ASCII
//! text can contain a word that is not). Every occurrence of every word is reported either way.

use aho_corasick::{AhoCorasick, AhoCorasickKind, BuildError, MatchKind};

/// Above this estimate of its table (states times alphabet, 4 bytes a cell), the ASCII words
/// get a contiguous NFA rather than a DFA: a rulebook of 100,000 keywords would otherwise take
/// hundreds of megabytes for a faster scan.
const DFA_BYTES: usize = 64 << 20;

/// Words and what each of them means, in automata.
pub(super) struct Scan<T> {
    ascii: Words<T>,
    /// The words with a byte outside ASCII, if any.
    other: Option<Words<T>>,
}

struct Words<T> {
    automaton: AhoCorasick,
    /// Per word (the automaton's pattern id), what it means.
    targets: Vec<T>,
}

impl<T> Words<T> {
    fn find<'a>(&'a self, text: &'a str) -> impl Iterator<Item = (usize, usize, &'a T)> + 'a {
        self.automaton
            .find_overlapping_iter(text)
            .map(|m| (m.start(), m.end(), &self.targets[m.pattern().as_usize()]))
    }
}

impl<T> Scan<T> {
    /// `targets[i]` is what `words[i]` means.
    pub(super) fn build(words: Vec<String>, targets: Vec<T>) -> Result<Scan<T>, BuildError> {
        let (mut ascii, mut other) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
        for (word, target) in words.into_iter().zip(targets) {
            let (words, targets) = if word.is_ascii() {
                &mut ascii
            } else {
                &mut other
            };
            words.push(word);
            targets.push(target);
        }
        let kind = (dfa_estimate(&ascii.0) <= DFA_BYTES).then_some(AhoCorasickKind::DFA);
        let ascii = Words {
            automaton: AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(kind)
                .build(&ascii.0)?,
            targets: ascii.1,
        };
        let other = if other.0.is_empty() {
            None
        } else {
            Some(Words {
                automaton: AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&other.0)?,
                targets: other.1,
            })
        };
        Ok(Scan { ascii, other })
    }

    /// Every occurrence of every word in `text`, overlapping ones included, as (start, end,
    /// what the word means), in no particular order.
    pub(super) fn find<'a>(
        &'a self,
        text: &'a str,
    ) -> impl Iterator<Item = (usize, usize, &'a T)> + 'a {
        let other = if text.is_ascii() {
            None
        } else {
            self.other.as_ref()
        };
        self.ascii
            .find(text)
            .chain(other.into_iter().flat_map(move |o| o.find(text)))
    }

    /// What every word means.
    pub(super) fn targets(&self) -> impl Iterator<Item = &T> {
        let other = self.other.iter().flat_map(|o| &o.targets);
        self.ascii.targets.iter().chain(other)
    }
}

/// The size of a DFA's table for `words`: a state per node of the words' trie (a prefix that
/// words share is one state, as in the automaton), times the alphabet rounded up to a power of
/// two, 4 bytes a cell. Counting a state per byte of every word instead overstated the table
/// of the default rulebook threefold, and at 18,000 keywords gave it the slow automaton
/// (session 23).
fn dfa_estimate(words: &[String]) -> usize {
    let mut seen = [false; 256];
    let mut sorted: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    sorted.sort_unstable();
    // In sorted order, a word adds a node for each byte after what it shares with the word
    // before it.
    let mut states = 1usize;
    let mut previous: &[u8] = &[];
    for word in sorted {
        let shared = word
            .iter()
            .zip(previous)
            .take_while(|(a, b)| a == b)
            .count();
        states = states.saturating_add(word.len() - shared);
        for &b in word {
            seen[usize::from(b)] = true;
        }
        previous = word;
    }
    let classes = seen.iter().filter(|s| **s).count() + 1;
    states
        .saturating_mul(classes.next_power_of_two())
        .saturating_mul(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every occurrence of every word at every position, by comparing bytes.
    fn naive(words: &[&str], text: &str) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for (i, word) in words.iter().enumerate() {
            for start in 0..text.len() {
                if text.as_bytes()[start..].starts_with(word.as_bytes()) {
                    out.push((start, start + word.len(), i));
                }
            }
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn both_automata_report_every_occurrence_of_every_word() {
        let words = [
            "pas", "paspoort", "poort", "as", "gas", "газ", "газа", "着火", "火", "straße", "sse",
            "een kind", "kind",
        ];
        let scan = Scan::build(
            words.iter().map(|w| (*w).to_owned()).collect(),
            (0..words.len()).collect(),
        )
        .expect("the automata build");
        assert!(scan.other.is_some());
        assert_eq!(scan.ascii.automaton.kind(), AhoCorasickKind::DFA);
        for text in [
            "",
            "paspoort",
            "mijn paspoort pas gas",
            "газа газ gas",
            "楼下着火了 paspoort",
            "strasse straße",
            "een kind kinderen",
        ] {
            let mut found: Vec<(usize, usize, usize)> =
                scan.find(text).map(|(s, e, t)| (s, e, *t)).collect();
            found.sort_unstable();
            assert_eq!(found, naive(&words, text), "{text}");
        }
    }

    #[test]
    fn a_table_too_large_is_not_built_as_a_dfa() {
        let small: Vec<String> = vec!["paspoort".into(), "gas".into()];
        assert!(dfa_estimate(&small) < 4096);
        // Words that share only their first letter: a trie node for nearly every byte.
        let many: Vec<String> = (0..20_000)
            .map(|i| format!("w{i}abcdefghijklmnopqrstuvwxyz"))
            .collect();
        assert!(dfa_estimate(&many) > DFA_BYTES);
        let scan = Scan::build(many.clone(), vec![(); many.len()]).expect("it builds");
        assert_ne!(scan.ascii.automaton.kind(), AhoCorasickKind::DFA);
    }
}
