//! Topic matching: every keyword of every topic in one Aho-Corasick automaton, plus one
//! `RegexSet` for all topic patterns, so a message is scanned once whatever the rulebook's size.
//! Peers that test one regex per rule slow down linearly with the rulebook; this does not.
//!
//! Word edges are checked here rather than in the automaton: "pas" must not fire inside
//! "paspoort" unless the keyword is written `pas*`. Normalised text makes that a byte check
//! (see [`crate::normalize`]).

use aho_corasick::{AhoCorasick, MatchKind};
use regex::RegexSet;

use crate::decision::{Category, TopicMatch};
use crate::normalize::{ends_word, normalize, starts_word};

/// A topic as the matcher needs it.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub id: String,
    pub category: Category,
    pub keywords: Vec<String>,
    pub patterns: Vec<String>,
    pub exclude: Vec<String>,
}

/// Why a term could not be compiled; the caller adds the file position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermError {
    /// (topic index, which list, index in that list, message)
    Keyword(usize, TermList, usize, String),
    Pattern(usize, usize, String),
    Automaton(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermList {
    Keywords,
    Exclude,
}

/// What one automaton pattern means. The same normalised text can serve several topics, and
/// be exact for one and a prefix for another.
#[derive(Debug, Clone, Copy)]
struct Target {
    topic: u32,
    /// Index into the topic's keywords, or into its exclusions when `exclude`.
    term: u32,
    prefix: bool,
    exclude: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Hit {
    topic: u32,
    exclude: bool,
    /// Keywords first, then patterns (offset by the keyword count).
    term: u32,
}

pub struct Matcher {
    automaton: AhoCorasick,
    targets: Vec<Vec<Target>>,
    patterns: RegexSet,
    /// Pattern index in `patterns` → (topic, index in the topic's patterns).
    pattern_owners: Vec<(u32, u32)>,
    topics: Vec<TopicSpec>,
    /// Sort key per topic: category precedence, then rulebook order.
    rank: Vec<(u8, u32)>,
}

/// Splits `pas*` into (`pas`, prefix = true) and normalises the word.
fn parse_term(raw: &str) -> Result<(String, bool), String> {
    let (word, prefix) = match raw.trim().strip_suffix('*') {
        Some(word) => (word, true),
        None => (raw.trim(), false),
    };
    let normalized = normalize(word);
    if normalized.is_empty() {
        return Err(format!(
            "keyword `{raw}` has no letters or digits, so it can never match"
        ));
    }
    Ok((normalized, prefix))
}

/// `\b` in a pattern means an ASCII word edge: normalised text has only letters, digits and
/// single spaces, and Unicode `\b` is hundreds of times slower on accented text.
fn ascii_word_edges(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('b') => out.push_str("(?-u:\\b)"),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Matcher {
    /// Builds the automaton and the pattern set. `category_rank` gives each category's
    /// precedence (0 is strongest).
    pub fn build(
        topics: Vec<TopicSpec>,
        category_rank: impl Fn(Category) -> u8,
    ) -> Result<Self, Vec<TermError>> {
        let mut errors = Vec::new();
        let mut words: Vec<String> = Vec::new();
        let mut targets: Vec<Vec<Target>> = Vec::new();
        let mut index: rustc_hash::FxHashMap<String, usize> = Default::default();
        let mut add = |word: String, target: Target| {
            let id = *index.entry(word.clone()).or_insert_with(|| {
                words.push(word);
                targets.push(Vec::new());
                targets.len() - 1
            });
            targets[id].push(target);
        };
        let mut pattern_sources = Vec::new();
        let mut pattern_owners = Vec::new();
        for (t, topic) in topics.iter().enumerate() {
            for (list, terms, exclude) in [
                (TermList::Keywords, &topic.keywords, false),
                (TermList::Exclude, &topic.exclude, true),
            ] {
                for (k, raw) in terms.iter().enumerate() {
                    match parse_term(raw) {
                        Ok((word, prefix)) => add(
                            word,
                            Target {
                                topic: t as u32,
                                term: k as u32,
                                prefix,
                                exclude,
                            },
                        ),
                        Err(message) => errors.push(TermError::Keyword(t, list, k, message)),
                    }
                }
            }
            for (p, pattern) in topic.patterns.iter().enumerate() {
                let source = ascii_word_edges(pattern);
                match regex::Regex::new(&source) {
                    Ok(_) => {
                        pattern_sources.push(source);
                        pattern_owners.push((t as u32, p as u32));
                    }
                    Err(e) => errors.push(TermError::Pattern(t, p, e.to_string())),
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&words)
            .map_err(|e| vec![TermError::Automaton(e.to_string())])?;
        let patterns = RegexSet::new(&pattern_sources)
            .map_err(|e| vec![TermError::Automaton(e.to_string())])?;
        let rank = topics
            .iter()
            .enumerate()
            .map(|(i, t)| (category_rank(t.category), i as u32))
            .collect();
        Ok(Matcher {
            automaton,
            targets,
            patterns,
            pattern_owners,
            topics,
            rank,
        })
    }

    pub fn topics(&self) -> &[TopicSpec] {
        &self.topics
    }

    pub fn keyword_count(&self) -> usize {
        self.targets.iter().map(Vec::len).sum()
    }

    /// All topics that match `normalized` (the output of [`crate::normalize::normalize_into`]),
    /// strongest first.
    pub fn find(&self, normalized: &str) -> Vec<TopicMatch> {
        let bytes = normalized.as_bytes();
        let mut hits: Vec<Hit> = Vec::new();
        for m in self.automaton.find_overlapping_iter(normalized) {
            if !starts_word(bytes, m.start()) {
                continue;
            }
            let whole_word = ends_word(bytes, m.end());
            for target in &self.targets[m.pattern().as_usize()] {
                if whole_word || target.prefix {
                    hits.push(Hit {
                        topic: target.topic,
                        exclude: target.exclude,
                        term: target.term,
                    });
                }
            }
        }
        if !self.pattern_owners.is_empty() {
            for i in self.patterns.matches(normalized).iter() {
                let (topic, pattern) = self.pattern_owners[i];
                let offset = self.topics[topic as usize].keywords.len() as u32;
                hits.push(Hit {
                    topic,
                    exclude: false,
                    term: offset + pattern,
                });
            }
        }
        if hits.is_empty() {
            return Vec::new();
        }
        // Exclusions sort after the topic's keyword hits, so one pass sees a topic's whole story.
        hits.sort_unstable();
        hits.dedup();
        let mut found: Vec<((u8, u32), TopicMatch)> = Vec::new();
        let mut i = 0;
        while i < hits.len() {
            let topic = hits[i].topic;
            let end = hits[i..]
                .iter()
                .position(|h| h.topic != topic)
                .map_or(hits.len(), |n| i + n);
            let group = &hits[i..end];
            i = end;
            if group.iter().any(|h| h.exclude) {
                continue;
            }
            let spec = &self.topics[topic as usize];
            let matched = group
                .iter()
                .map(|h| {
                    let term = h.term as usize;
                    match spec.keywords.get(term) {
                        Some(keyword) => keyword.clone(),
                        None => format!("/{}/", spec.patterns[term - spec.keywords.len()]),
                    }
                })
                .collect();
            let topic_match = TopicMatch {
                topic: spec.id.clone(),
                category: spec.category,
                matched,
            };
            found.push((self.rank[topic as usize], topic_match));
        }
        found.sort_unstable_by_key(|(rank, _)| *rank);
        found.into_iter().map(|(_, m)| m).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    fn topic(id: &str, category: Category, keywords: &[&str]) -> TopicSpec {
        TopicSpec {
            id: id.into(),
            category,
            keywords: keywords.iter().map(|s| s.to_string()).collect(),
            patterns: vec![],
            exclude: vec![],
        }
    }

    fn rank(c: Category) -> u8 {
        match c {
            Category::Crisis => 0,
            Category::Complaint => 1,
            _ => 5,
        }
    }

    fn ids(m: &Matcher, text: &str) -> Vec<String> {
        m.find(&normalize(text))
            .into_iter()
            .map(|t| t.topic)
            .collect()
    }

    #[test]
    fn keywords_respect_word_edges_unless_written_as_prefix() {
        let m = Matcher::build(
            vec![
                topic("pass", Category::Question, &["pas"]),
                topic("passport", Category::Question, &["paspoort*"]),
            ],
            rank,
        )
        .expect("builds");
        assert_eq!(ids(&m, "Mijn paspoort is verlopen"), ["passport"]);
        assert_eq!(ids(&m, "paspoorten aanvragen"), ["passport"]);
        assert_eq!(ids(&m, "ik ben mijn pas kwijt"), ["pass"]);
        assert_eq!(ids(&m, "kompas"), Vec::<String>::new());
        assert_eq!(ids(&m, "PAS!"), ["pass"]);
    }

    #[test]
    fn phrases_accents_and_punctuation_match_after_normalisation() {
        let m = Matcher::build(
            vec![topic("gas", Category::Crisis, &["gaslucht", "ruik gas"])],
            rank,
        )
        .expect("builds");
        assert_eq!(ids(&m, "Ik RUIK gas in de straat!"), ["gas"]);
        assert_eq!(ids(&m, "gáslücht bij de school"), ["gas"]);
        assert_eq!(ids(&m, "ik ruik gasbellen"), Vec::<String>::new());
    }

    #[test]
    fn exclusions_veto_a_topic_and_patterns_match_normalised_text() {
        let mut fire = topic("fire", Category::Crisis, &["brand"]);
        fire.exclude = vec!["brandweerkazerne".into(), "brandstof*".into()];
        let mut postcode = topic("postcode", Category::Question, &[]);
        postcode.patterns = vec![r"\b\d{4} ?[a-z]{2}\b".into()];
        let m = Matcher::build(vec![fire, postcode], rank).expect("builds");
        assert_eq!(ids(&m, "Brand in de keuken"), ["fire"]);
        assert_eq!(
            ids(&m, "brand bij de brandweerkazerne open dag"),
            Vec::<String>::new()
        );
        let found = m.find(&normalize("Wonen op 1234 AB"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].matched, [r"/\b\d{4} ?[a-z]{2}\b/"]);
    }

    #[test]
    fn stronger_categories_come_first_then_rulebook_order() {
        let m = Matcher::build(
            vec![
                topic("waste", Category::Question, &["afval"]),
                topic("complaint", Category::Complaint, &["klacht"]),
                topic("fire", Category::Crisis, &["brand"]),
            ],
            rank,
        )
        .expect("builds");
        assert_eq!(
            ids(&m, "klacht over afval en brand"),
            ["fire", "complaint", "waste"]
        );
    }

    #[test]
    fn keywords_without_letters_are_rejected_with_their_position() {
        let errors = Matcher::build(vec![topic("x", Category::Question, &["ok", "?!"])], rank)
            .err()
            .unwrap_or_default();
        assert!(matches!(
            &errors[..],
            [TermError::Keyword(0, TermList::Keywords, 1, _)]
        ));
    }
}
