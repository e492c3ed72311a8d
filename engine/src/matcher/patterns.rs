//! The topics' regular expressions, run only where they can match.
//!
//! A `RegexSet` reports every pattern that matches, so it reads each message to the end with
//! all its patterns at once, and its lazy DFA builds a state for each mix of patterns still
//! alive. Chinese patterns ("闻到.{0,6}煤气") can never match a Dutch or English message, yet
//! in the one set they made every message's states new: 56,000 instructions a message for 35
//! patterns (session 8, callgrind). Split by script they cost nothing where they cannot match.
//!
//! Most of the other patterns start with one of a few words (`\b(brandweer|politie) .*`,
//! `^(hallo|hoi)…`), and most messages have none of them: the set's overlapping search still
//! read every message to the end, a fifth of the keyword scan (session 13). So a pattern whose
//! every match starts with one of its literals (regex-syntax's prefix extraction) runs alone,
//! and only on a message where one of those literals occurs where the pattern can start:
//! anywhere, at a word's start for a pattern that opens with `\b`, or at the text's start for
//! one that opens with `^`. The literals are found by the keywords' automaton, in the scan the
//! message gets anyway ([`Patterns::literals`]). The patterns anchored at the start without such
//! literals run as a set of their own on every message: anchored, its search ends where none of
//! them can match any more, and one search of them all replaced four or five searches of one
//! pattern a message in the benchmark (session 15). Whether a pattern matches is the same
//! either way; the rest still run as one set.

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use regex_syntax::hir::literal::Extractor;
use regex_syntax::hir::{Hir, HirKind, Look};

/// The lazy DFA's cache per set and thread. The default 2 MiB was outgrown by the default
/// rulebook's long alternations, and then every message rebuilt states built before.
const DFA_CACHE: usize = 32 << 20;

pub(super) struct Patterns {
    everywhere: Set,
    han: Set,
    /// The patterns that run alone, in the order [`Patterns::literals`] numbers them.
    alone: Vec<Regex>,
    alone_owners: Vec<(u32, u32)>,
    /// The patterns anchored at the start that have no literals to wait for.
    anchored: Set,
    /// (literal, index in `alone`, where it must occur), for the keywords' automaton.
    literals: Vec<(String, u32, Anchor)>,
}

/// One `RegexSet` and, per pattern in it, its (topic, index in the topic's patterns).
struct Set {
    regexes: RegexSet,
    owners: Vec<(u32, u32)>,
}

/// Where a literal must occur for its pattern to possibly match there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Anchor {
    Anywhere,
    /// After `\b` (ASCII): at the text's start or after a byte that is not a word byte; the
    /// literal starts with a word byte, so that is exactly where `\b` holds.
    WordStart,
    /// After `^`: at the text's start.
    TextStart,
}

impl Anchor {
    /// Whether a literal found at `start` of `text` can start a match.
    #[inline]
    pub(super) fn holds(self, text: &[u8], start: usize) -> bool {
        match self {
            Anchor::Anywhere => true,
            Anchor::WordStart => start == 0 || !is_word_byte(text[start - 1]),
            Anchor::TextStart => start == 0,
        }
    }
}

/// Which of the patterns that run alone may match a message: one bit each, set by the scan.
pub(super) struct Candidates(Vec<u64>);

impl Candidates {
    #[inline]
    pub(super) fn set(&mut self, pattern: u32) {
        self.0[pattern as usize / 64] |= 1 << (pattern % 64);
    }
}

impl Patterns {
    /// `sources` are already valid regular expressions, each with its owner.
    pub(super) fn build(sources: Vec<(String, (u32, u32))>) -> Result<Patterns, regex::Error> {
        let (han, rest): (Vec<_>, Vec<_>) =
            sources.into_iter().partition(|(source, _)| has_han(source));
        let mut everywhere = Vec::new();
        let mut patterns = Patterns {
            everywhere: Set::build(Vec::new())?,
            han: Set::build(han)?,
            alone: Vec::new(),
            alone_owners: Vec::new(),
            anchored: Set::build(Vec::new())?,
            literals: Vec::new(),
        };
        let mut anchored = Vec::new();
        for (source, owner) in rest {
            let Some(required) = required_literals(&source) else {
                if starts_anchored(&source) {
                    anchored.push((source, owner));
                } else {
                    everywhere.push((source, owner));
                }
                continue;
            };
            let at = patterns.alone.len() as u32;
            patterns.alone.push(
                RegexBuilder::new(&source)
                    .dfa_size_limit(DFA_CACHE)
                    .build()?,
            );
            patterns.alone_owners.push(owner);
            for (literal, anchor) in required {
                patterns.literals.push((literal, at, anchor));
            }
        }
        patterns.everywhere = Set::build(everywhere)?;
        patterns.anchored = Set::build(anchored)?;
        Ok(patterns)
    }

    /// The literals the keywords' automaton should find: (literal, pattern, where it must
    /// occur); a hit that holds goes to [`Candidates::set`] with the pattern.
    pub(super) fn literals(&self) -> &[(String, u32, Anchor)] {
        &self.literals
    }

    /// No pattern a candidate yet.
    pub(super) fn candidates(&self) -> Candidates {
        Candidates(vec![0; self.alone.len().div_ceil(64)])
    }

    /// Calls `found(topic, pattern)` for every pattern that matches `normalized`, given the
    /// literals the scan found.
    pub(super) fn each_match(
        &self,
        normalized: &str,
        candidates: &Candidates,
        mut found: impl FnMut(u32, u32),
    ) {
        for (i, regex) in self.alone.iter().enumerate() {
            let candidate = candidates.0[i / 64] & (1 << (i % 64)) != 0;
            if candidate && regex.is_match(normalized) {
                let (topic, pattern) = self.alone_owners[i];
                found(topic, pattern);
            }
        }
        self.anchored.each_match(normalized, &mut found);
        self.everywhere.each_match(normalized, &mut found);
        if !self.han.owners.is_empty() && has_han(normalized) {
            self.han.each_match(normalized, &mut found);
        }
    }
}

impl Set {
    fn build(sources: Vec<(String, (u32, u32))>) -> Result<Set, regex::Error> {
        let (sources, owners): (Vec<String>, Vec<(u32, u32)>) = sources.into_iter().unzip();
        let regexes = RegexSetBuilder::new(&sources)
            .dfa_size_limit(DFA_CACHE)
            .build()?;
        Ok(Set { regexes, owners })
    }

    fn each_match(&self, normalized: &str, found: &mut impl FnMut(u32, u32)) {
        if self.owners.is_empty() {
            return;
        }
        for i in self.regexes.matches(normalized).iter() {
            let (topic, pattern) = self.owners[i];
            found(topic, pattern);
        }
    }
}

/// A byte `(?-u:\b)` counts as part of a word.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The literals one of which every match of `source` starts with, each with where it must
/// occur; `None` when there are none to rely on (a match may start with anything, or with
/// nothing).
fn required_literals(source: &str) -> Option<Vec<(String, Anchor)>> {
    let hir = regex_syntax::parse(source).ok()?;
    let mut out = Vec::new();
    branch_literals(&hir, &mut out)?;
    Some(out)
}

/// [`required_literals`] of one alternative: a top-level alternation is each of its branches,
/// so that each branch keeps its own leading `^` or `\b`.
fn branch_literals(hir: &Hir, out: &mut Vec<(String, Anchor)>) -> Option<()> {
    match hir.kind() {
        HirKind::Alternation(branches) => {
            for branch in branches {
                branch_literals(branch, out)?;
            }
            return Some(());
        }
        HirKind::Capture(capture) => return branch_literals(&capture.sub, out),
        _ => {}
    }
    // Leading assertions say where a match can start; the extractor reads them as empty.
    let mut anchor = Anchor::Anywhere;
    if let HirKind::Concat(parts) = hir.kind() {
        for part in parts {
            match part.kind() {
                HirKind::Look(Look::Start) => anchor = Anchor::TextStart,
                HirKind::Look(Look::WordAscii) if anchor == Anchor::Anywhere => {
                    anchor = Anchor::WordStart;
                }
                _ => break,
            }
        }
    }
    let seq = Extractor::new().extract(hir);
    let literals = seq.literals()?;
    if literals.is_empty() || literals.iter().any(|l| l.is_empty()) {
        return None;
    }
    for literal in literals {
        let bytes = literal.as_bytes();
        // `\b` before a literal that starts with a word byte means a word starts there;
        // before any other byte it would mean the opposite, so it is not relied on.
        let anchor = match anchor {
            Anchor::WordStart if !is_word_byte(bytes[0]) => Anchor::Anywhere,
            other => other,
        };
        // The automaton takes text: a literal cut inside a character is not relied on.
        out.push((String::from_utf8(bytes.to_vec()).ok()?, anchor));
    }
    Some(())
}

/// Whether every match of `source` starts at the text's start (`^…`, or each branch so).
fn starts_anchored(source: &str) -> bool {
    regex_syntax::parse(source)
        .is_ok_and(|hir| hir.properties().look_set_prefix().contains(Look::Start))
}

/// Whether `text` has a CJK ideograph (the Unified Ideographs and their first extension).
fn has_han(text: &str) -> bool {
    // Those are the characters whose UTF-8 starts with 0xE3 to 0xE9: text without such a byte
    // is answered without decoding a character, which cost a twentieth of the keyword scan, and
    // ASCII text (most messages) by `is_ascii`, which reads eight bytes at a time (session 15).
    !text.is_ascii()
        && text.bytes().any(|b| (0xE3..=0xE9).contains(&b))
        && text
            .chars()
            .any(|c| matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the matcher finds: the literals at every position where they hold (the keywords'
    /// automaton reports every occurrence), then the patterns.
    fn matches(patterns: &Patterns, text: &str) -> Vec<(u32, u32)> {
        let mut candidates = patterns.candidates();
        let bytes = text.as_bytes();
        for (literal, pattern, anchor) in patterns.literals() {
            for start in 0..bytes.len() {
                if bytes[start..].starts_with(literal.as_bytes()) && anchor.holds(bytes, start) {
                    candidates.set(*pattern);
                }
            }
        }
        let mut found = Vec::new();
        patterns.each_match(text, &candidates, |t, p| found.push((t, p)));
        found.sort_unstable();
        found
    }

    #[test]
    fn han_patterns_match_han_text_and_the_others_match_everywhere() {
        let patterns = Patterns::build(vec![
            (r"\bbrand\b".into(), (0, 0)),
            ("(着火|火灾)".into(), (0, 1)),
            (r"\b(gas|煤气)\b".into(), (1, 0)),
        ])
        .expect("valid patterns");
        assert_eq!(matches(&patterns, "er is brand"), vec![(0, 0)]);
        assert_eq!(matches(&patterns, "楼下着火了 brand"), vec![(0, 0), (0, 1)]);
        // A pattern with Han characters among others is only run on Han text.
        assert_eq!(matches(&patterns, "ik ruik gas"), vec![]);
        assert_eq!(matches(&patterns, "有煤气 gas"), vec![(1, 0)]);
        assert_eq!(matches(&patterns, "niets"), vec![]);
    }

    #[test]
    fn a_pattern_run_where_its_literals_occur_matches_as_in_one_set() {
        let rulebook = crate::Rulebook::embedded().expect("the default rulebook compiles");
        let sources: Vec<(String, (u32, u32))> = rulebook
            .matcher
            .topics()
            .iter()
            .enumerate()
            .flat_map(|(t, topic)| {
                topic.patterns.iter().enumerate().map(move |(p, source)| {
                    (super::super::ascii_word_edges(source), (t as u32, p as u32))
                })
            })
            .collect();
        let patterns = Patterns::build(sources.clone()).expect("the patterns build");
        let set = RegexSet::new(sources.iter().map(|(s, _)| s)).expect("one set");
        // Most patterns run where their literals are, or this compares little.
        let gated = patterns.alone.len();
        assert!(
            gated > 2 * (patterns.anchored.owners.len() + patterns.everywhere.owners.len()),
            "{gated} run where their literals are, {} anchored, {} in the set",
            patterns.anchored.owners.len(),
            patterns.everywhere.owners.len()
        );
        let mut texts: Vec<String> = crate::RulebookSource::embedded()
            .examples
            .iter()
            .flat_map(|file| crate::examples::parse_examples(file).expect("the examples parse"))
            .map(|e| crate::normalize::normalize(&e.text))
            .collect();
        // Every literal where it may and may not start a match, alone and in a sentence.
        let literals: Vec<String> = required_literals_of(&sources);
        for literal in &literals {
            for text in [
                literal.clone(),
                format!("x{literal}"),
                format!("ik {literal} en verder"),
                format!("ab{literal}cd de"),
                format!("{literal}{literal}"),
                format!("é{literal}"),
            ] {
                texts.push(text);
            }
        }
        let (mut compared, mut matched) = (0, 0);
        for text in &texts {
            let mut expected: Vec<(u32, u32)> =
                set.matches(text).iter().map(|i| sources[i].1).collect();
            expected.sort_unstable();
            assert_eq!(matches(&patterns, text), expected, "{text}");
            compared += 1;
            matched += usize::from(!expected.is_empty());
        }
        assert!(
            compared > 20_000 && matched > 1_000,
            "{compared} texts, {matched} matched"
        );
    }

    fn required_literals_of(sources: &[(String, (u32, u32))]) -> Vec<String> {
        sources
            .iter()
            .filter_map(|(s, _)| required_literals(s))
            .flatten()
            .map(|(l, _)| l)
            .collect()
    }

    #[test]
    fn the_byte_test_for_han_agrees_with_decoding_every_character() {
        let by_char = |text: &str| {
            text.chars()
                .any(|c| matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}'))
        };
        // Every character from U+3000 to U+A100 (the range's edges and the characters around
        // them whose UTF-8 also starts with 0xE3 to 0xEA), alone and among other text.
        let mut texts: Vec<String> = ('\u{3000}'..='\u{A100}')
            .flat_map(|c| [c.to_string(), format!("brand é{c} x")])
            .collect();
        texts.extend(["", "brand", "één", "привет", "مرحبا", "한국어", "🔥"].map(String::from));
        let mut han = 0;
        for text in &texts {
            assert_eq!(has_han(text), by_char(text), "{text:?}");
            han += usize::from(has_han(text));
        }
        assert!(han > 40_000, "only {han} texts with Han");
    }
}
