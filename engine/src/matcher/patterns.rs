//! The topics' regular expressions, run as two sets: one on every message, and one for
//! patterns written in Han characters, run only on a message that has one.
//!
//! A `RegexSet` reports every pattern that matches, so it reads each message to the end with
//! all its patterns at once, and its lazy DFA builds a state for each mix of patterns still
//! alive. Chinese patterns ("闻到.{0,6}煤气") can never match a Dutch or English message, yet
//! in the one set they made every message's states new: 56,000 instructions a message for 35
//! patterns (session 8, callgrind). Split by script they cost nothing where they cannot match.

use regex::{RegexSet, RegexSetBuilder};

/// The lazy DFA's cache per set and thread. The default 2 MiB was outgrown by the default
/// rulebook's long alternations, and then every message rebuilt states built before.
const DFA_CACHE: usize = 32 << 20;

pub(super) struct Patterns {
    everywhere: Set,
    han: Set,
}

/// One `RegexSet` and, per pattern in it, its (topic, index in the topic's patterns).
struct Set {
    regexes: RegexSet,
    owners: Vec<(u32, u32)>,
}

impl Patterns {
    /// `sources` are already valid regular expressions, each with its owner.
    pub(super) fn build(sources: Vec<(String, (u32, u32))>) -> Result<Patterns, regex::Error> {
        let (han, everywhere): (Vec<_>, Vec<_>) =
            sources.into_iter().partition(|(source, _)| has_han(source));
        Ok(Patterns {
            everywhere: Set::build(everywhere)?,
            han: Set::build(han)?,
        })
    }

    /// Calls `found(topic, pattern)` for every pattern that matches `normalized`.
    pub(super) fn each_match(&self, normalized: &str, mut found: impl FnMut(u32, u32)) {
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

/// Whether `text` has a CJK ideograph (the Unified Ideographs and their first extension).
fn has_han(text: &str) -> bool {
    // Those are the characters whose UTF-8 starts with 0xE3 to 0xE9: text without such a byte
    // (all ASCII text) is answered without decoding a character, which cost a twentieth of the
    // keyword scan (session 15).
    text.bytes().any(|b| (0xE3..=0xE9).contains(&b))
        && text
            .chars()
            .any(|c| matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(patterns: &Patterns, text: &str) -> Vec<(u32, u32)> {
        let mut found = Vec::new();
        patterns.each_match(text, |t, p| found.push((t, p)));
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
