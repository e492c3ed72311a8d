//! Topic matching: every keyword of every topic in one Aho-Corasick automaton, plus the topics'
//! patterns ([`patterns`]), so a message is scanned once whatever the rulebook's size; the same
//! automaton finds the literals a pattern's match starts with, so a pattern runs only where it can.
//! Peers that test one regex per rule slow down linearly with the rulebook; this does not.
//!
//! Word edges are checked here rather than in the automaton: "pas" must not fire inside
//! "paspoort" unless the keyword is written `pas*`. Normalised text makes that a byte check
//! (see [`crate::normalize`]).
//!
//! On top of the one scan, each topic may let its single-word keywords match what people
//! actually type ([`MatchOptions`]): other inflections (a Snowball stem, checked only for words
//! that start like the keyword's stem), Dutch compounds (the keyword inside a longer word), typos
//! ([`fuzzy`]), and a negation that makes "geen klacht" not count as "klacht". `NEAR/n` keywords
//! need two words close together. Every match says how it matched, for `explain`.
//!
//! # Layout
//!
//! - [`terms`]: the keyword syntax (`word`, `word*`, `=word`, `a NEAR/5 b`).
//! - [`fuzzy`]: the typo index.
//! - `scan`: the keywords' automata (a DFA for the words in ASCII).
//! - `filter`: which words cannot be a negator or an ender, without a hash lookup.
//! - `patterns`: the regular expressions, run only where their literals are.

mod filter;
pub mod fuzzy;
mod patterns;
mod scan;
pub mod terms;

use filter::WordFilter;
use patterns::{Anchor, Patterns};
use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::{FxHashMap, FxHashSet};
use scan::Scan;

use crate::decision::{Category, TopicMatch};
use crate::normalize::{ends_word, starts_word, word_ranges};
use fuzzy::TypoIndex;
use terms::{Keyword, parse_keyword, parse_term};

/// Which variants of its keywords a topic accepts. All off is the matching of rulebooks
/// written before these existed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchOptions {
    /// "beroep" also matches "beroepen" (Snowball stems, Dutch and English).
    pub stems: bool,
    /// "paspoort" also matches inside "paspoortaanvraag", "doorbraak" inside "dijkdoorbraak".
    pub compounds: bool,
    /// "rijbewijs" also matches "rijbewjis" (see [`fuzzy`]).
    pub typos: bool,
    /// A keyword right after a negator ("geen", "not") does not count.
    pub negation: bool,
}

/// A topic as the matcher needs it.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub id: String,
    pub category: Category,
    pub keywords: Vec<String>,
    pub patterns: Vec<String>,
    pub exclude: Vec<String>,
    pub options: MatchOptions,
}

/// The words that open and close a negation, from the lexicon.
#[derive(Debug, Clone, Default)]
pub struct Negation {
    pub negators: FxHashSet<String>,
    /// Words that end a negation early ("maar", "but").
    pub enders: FxHashSet<String>,
    /// How many words after a negator it reaches.
    pub reach: usize,
}

/// What the matcher also needs from the rest of the rulebook.
#[derive(Debug, Default)]
pub struct MatcherSettings {
    pub negation: Negation,
    /// Words spelled right by definition (the lexicon's), never read as a typo.
    pub known_words: Vec<String>,
    /// Word endings that make another word of a keyword inside a compound: with "ling",
    /// "voorstel" (a proposal) is not found in "theatervoorstelling" (a show).
    pub compound_endings: Vec<String>,
}

/// The version of the matching algorithms (the stemmer pin included). Rulebooks that use
/// stems or typos hash it into their version, so a change here is a new version.
pub const ALGORITHM_VERSION: &str = "matcher-5 rust-stemmers-1.2.0 snowball-nl-en osa-symspell known-inflections typo-words-5+ compound-letters";

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

/// What a hit on one automaton pattern means.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// A keyword (or exclusion) as written.
    Term {
        prefix: bool,
        exclude: bool,
        /// Compounds may apply (single word, not exact, topic option on, 6+ letters).
        compounds: bool,
    },
    /// The Snowball stem of a keyword: a candidate, confirmed by stemming the message word.
    Stem { algorithm: u8 },
    /// One side of a `NEAR/n` keyword, and the keyword's index in [`Matcher::near`].
    Near { side: u8, prefix: bool, near: u32 },
    /// A literal that a pattern's match starts with ([`patterns`]): the pattern (`term`) may
    /// match. Not a keyword.
    Literal(Anchor),
}

/// What a message word must stem to for a keyword's stem target.
#[derive(Debug)]
struct StemTarget {
    /// The keyword's stem, by algorithm.
    stems: [Box<str>; 2],
    /// The keyword as written (normalised): a message word that is the keyword itself has its
    /// stem by definition, and is not stemmed again (Snowball costs thousands of instructions).
    keyword: Box<str>,
}

#[derive(Debug, Clone, Copy)]
struct Target {
    topic: u32,
    /// Index into the topic's keywords, or into its exclusions for an exclusion.
    term: u32,
    role: Role,
}

/// How a keyword matched, best first: an exact hit explains itself best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum How {
    Exact,
    Stem,
    Compound,
    Typo,
    Pattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Hit {
    topic: u32,
    exclude: bool,
    /// Keywords first, then patterns (offset by the keyword count).
    term: u32,
    how: How,
    /// The message word (byte range) it matched, for explanations.
    word: (u32, u32),
    negated_by: Option<(u32, u32)>,
}

/// A `NEAR/n` keyword.
#[derive(Debug, Clone, Copy)]
struct NearSpec {
    topic: u32,
    term: u32,
    within: u32,
}

/// A keyword word open to typos: which topic keyword it stands for.
#[derive(Debug, Clone, Copy)]
struct TypoTarget {
    topic: u32,
    term: u32,
}

const STEMMERS: [Algorithm; 2] = [Algorithm::Dutch, Algorithm::English];

pub struct Matcher {
    /// Every keyword word, stem and pattern literal, and what a hit on it means.
    scan: Scan<Vec<Target>>,
    patterns: Patterns,
    topics: Vec<TopicSpec>,
    /// Sort key per topic: category precedence, then rulebook order.
    rank: Vec<(u8, u32)>,
    near: Vec<NearSpec>,
    /// Per stem target: the stem it must equal, by algorithm, and the keyword itself.
    stems: FxHashMap<(u32, u32), StemTarget>,
    stemmers: [Stemmer; 2],
    typos: TypoIndex,
    typo_targets: FxHashMap<u32, Vec<TypoTarget>>,
    negation: Negation,
    compound_endings: FxHashSet<Box<str>>,
    /// Which words can be a negator or an ender at all, by length and first byte.
    negation_words: WordFilter,
    any_negation: bool,
}

/// The index of the word that contains byte `at`.
fn word_at(words: &[(u32, u32)], at: usize) -> usize {
    words
        .partition_point(|&(_, end)| (end as usize) <= at)
        .min(words.len().saturating_sub(1))
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
    /// Builds the automaton, the pattern set and the typo index. `category_rank` gives each
    /// category's precedence (0 is strongest).
    pub fn build(
        topics: Vec<TopicSpec>,
        category_rank: impl Fn(Category) -> u8,
        settings: MatcherSettings,
    ) -> Result<Self, Vec<TermError>> {
        let stemmers = STEMMERS.map(Stemmer::create);
        let mut errors = Vec::new();
        let mut words: Vec<String> = Vec::new();
        let mut targets: Vec<Vec<Target>> = Vec::new();
        let mut index: FxHashMap<String, usize> = Default::default();
        let mut add = |word: String, target: Target| {
            let id = *index.entry(word.clone()).or_insert_with(|| {
                words.push(word);
                targets.push(Vec::new());
                targets.len() - 1
            });
            targets[id].push(target);
        };
        let mut typos = TypoIndex::default();
        for word in &settings.known_words {
            typos.know(word);
        }
        let mut typo_targets: FxHashMap<u32, Vec<TypoTarget>> = Default::default();
        let mut stems: FxHashMap<(u32, u32), StemTarget> = Default::default();
        let mut near = Vec::new();
        let mut pattern_sources = Vec::new();
        for (t, topic) in topics.iter().enumerate() {
            let (t32, options) = (t as u32, topic.options);
            for (k, raw) in topic.keywords.iter().enumerate() {
                let k32 = k as u32;
                match parse_keyword(raw) {
                    Ok(Keyword::Term(term)) => {
                        for word in term.text.split(' ') {
                            typos.know(word);
                        }
                        let variants = term.allows_variants();
                        add(
                            term.text.clone(),
                            Target {
                                topic: t32,
                                term: k32,
                                role: Role::Term {
                                    prefix: term.prefix,
                                    exclude: false,
                                    // Below six letters too many words hide inside
                                    // others ("riool" in "rioolheffing").
                                    // Letters, not bytes: a four-letter Arabic word is
                                    // eight bytes and would hide inside longer words.
                                    compounds: variants
                                        && options.compounds
                                        && term.text.chars().count() >= 6,
                                },
                            },
                        );
                        // Stems from five letters, like typos: the Dutch stem of "pers" is
                        // "per", and a three-letter stem starts half the dictionary.
                        if variants && options.stems && term.text.len() >= 5 {
                            let by_algorithm = stemmers
                                .each_ref()
                                .map(|s| s.stem(&term.text).into_owned().into_boxed_str());
                            for (a, stem) in by_algorithm.iter().enumerate() {
                                if stem.len() >= 4 {
                                    add(
                                        stem.to_string(),
                                        Target {
                                            topic: t32,
                                            term: k32,
                                            role: Role::Stem { algorithm: a as u8 },
                                        },
                                    );
                                }
                            }
                            stems.insert(
                                (t32, k32),
                                StemTarget {
                                    stems: by_algorithm,
                                    keyword: term.text.clone().into_boxed_str(),
                                },
                            );
                        }
                        if term.allows_typos()
                            && options.typos
                            && let Some(id) = typos.add(&term.text)
                        {
                            typo_targets.entry(id).or_default().push(TypoTarget {
                                topic: t32,
                                term: k32,
                            });
                        }
                    }
                    Ok(Keyword::Near {
                        left,
                        right,
                        within,
                    }) => {
                        let index = near.len() as u32;
                        near.push(NearSpec {
                            topic: t32,
                            term: k32,
                            within: u32::from(within),
                        });
                        for (side, term) in [(0u8, left), (1, right)] {
                            typos.know(&term.text);
                            add(
                                term.text,
                                Target {
                                    topic: t32,
                                    term: k32,
                                    role: Role::Near {
                                        side,
                                        prefix: term.prefix,
                                        near: index,
                                    },
                                },
                            );
                        }
                    }
                    Err(message) => {
                        errors.push(TermError::Keyword(t, TermList::Keywords, k, message));
                    }
                }
            }
            // Exclusions match as written: a veto should be narrow, never a guess.
            for (k, raw) in topic.exclude.iter().enumerate() {
                match parse_term(raw) {
                    Ok(term) => add(
                        term.text,
                        Target {
                            topic: t32,
                            term: k as u32,
                            role: Role::Term {
                                prefix: term.prefix,
                                exclude: true,
                                compounds: false,
                            },
                        },
                    ),
                    Err(message) => {
                        errors.push(TermError::Keyword(t, TermList::Exclude, k, message))
                    }
                }
            }
            for (p, pattern) in topic.patterns.iter().enumerate() {
                let source = ascii_word_edges(pattern);
                match regex::Regex::new(&source) {
                    Ok(_) => pattern_sources.push((source, (t32, p as u32))),
                    Err(e) => errors.push(TermError::Pattern(t, p, e.to_string())),
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let patterns = Patterns::build(pattern_sources)
            .map_err(|e| vec![TermError::Automaton(e.to_string())])?;
        for (literal, pattern, anchor) in patterns.literals() {
            add(
                literal.clone(),
                Target {
                    topic: 0,
                    term: *pattern,
                    role: Role::Literal(*anchor),
                },
            );
        }
        let scan =
            Scan::build(words, targets).map_err(|e| vec![TermError::Automaton(e.to_string())])?;
        let rank = topics
            .iter()
            .enumerate()
            .map(|(i, t)| (category_rank(t.category), i as u32))
            .collect();
        let any_negation =
            topics.iter().any(|t| t.options.negation) && !settings.negation.negators.is_empty();
        Ok(Matcher {
            scan,
            patterns,
            topics,
            rank,
            near,
            stems,
            stemmers,
            typos,
            typo_targets,
            negation_words: WordFilter::new(
                settings
                    .negation
                    .negators
                    .iter()
                    .chain(&settings.negation.enders),
            ),
            negation: settings.negation,
            compound_endings: settings
                .compound_endings
                .iter()
                .map(|e| e.as_str().into())
                .collect(),
            any_negation,
        })
    }

    pub fn topics(&self) -> &[TopicSpec] {
        &self.topics
    }

    pub fn keyword_count(&self) -> usize {
        self.scan
            .targets()
            .flatten()
            .filter(|t| !matches!(t.role, Role::Literal(_)))
            .count()
    }

    /// For each word, the negator (byte range) whose scope it is in, if any.
    fn negations(&self, text: &str, words: &[(u32, u32)]) -> Vec<Option<(u32, u32)>> {
        let mut out = vec![None; words.len()];
        let mut scope: Option<((u32, u32), usize)> = None;
        for (i, &(start, end)) in words.iter().enumerate() {
            let word = &text[start as usize..end as usize];
            let listed = self.negation_words.may_have(word);
            if listed && self.negation.negators.contains(word) {
                scope = Some(((start, end), self.negation.reach));
                continue;
            }
            if listed && self.negation.enders.contains(word) {
                scope = None;
                continue;
            }
            if let Some((negator, left)) = scope {
                out[i] = Some(negator);
                scope = (left > 1).then_some((negator, left - 1));
            }
        }
        out
    }

    /// All topics that match `normalized` (the output of [`crate::normalize::normalize_into`]),
    /// strongest first.
    pub fn find(&self, normalized: &str) -> Vec<TopicMatch> {
        self.find_explained(normalized).0
    }

    /// Like [`Matcher::find`], and also the keywords that did not count because a negator
    /// came right before them (`klacht (after geen)`), for the decision's reasons.
    pub fn find_explained(&self, normalized: &str) -> (Vec<TopicMatch>, Vec<String>) {
        self.find_explained_in(normalized, &word_ranges(normalized))
    }

    /// [`Matcher::find_explained`] of a text already split into `words`
    /// ([`crate::normalize::word_ranges`]).
    pub fn find_explained_in(
        &self,
        normalized: &str,
        words: &[(u32, u32)],
    ) -> (Vec<TopicMatch>, Vec<String>) {
        let bytes = normalized.as_bytes();
        // Most messages have a hit, and a few more: made once at a size that holds them.
        let mut hits: Vec<Hit> = Vec::with_capacity(8);
        // (near index, side, word index)
        let mut near_hits: Vec<(u32, u8, u32)> = Vec::with_capacity(64);
        let mut candidates = self.patterns.candidates();
        for (start, end, targets) in self.scan.find(normalized) {
            let at_start = starts_word(bytes, start);
            let at_end = ends_word(bytes, end);
            let w = word_at(words, start);
            let word = words.get(w).copied().unwrap_or((start as u32, end as u32));
            for target in targets {
                let how = match target.role {
                    Role::Term {
                        prefix,
                        exclude,
                        compounds,
                    } => {
                        let how = if at_start && (at_end || prefix) {
                            Some(How::Exact)
                        } else if compounds && !exclude {
                            // Inside one word, with at least three letters on each side that
                            // has any: "dijk|doorbraak", "paspoort|aanvraag".
                            // Counted in letters: "تغرق" (drowns) is not a part of
                            // "يستغرق" (it takes), which two bytes per letter made it.
                            let (ws, we) = (word.0 as usize, word.1 as usize);
                            let letters = |from: usize, to: usize| {
                                normalized.get(from..to).map_or(0, |s| s.chars().count())
                            };
                            let head = if start > ws { letters(ws, start) } else { 0 };
                            let tail = if we > end { letters(end, we) } else { 0 };
                            // An ending, not a word, after the keyword makes another word of it.
                            let ending = end < we
                                && normalized
                                    .get(end..we)
                                    .is_some_and(|rest| self.compound_endings.contains(rest));
                            (end <= we
                                && (head == 0 || head >= 3)
                                && (tail == 0 || tail >= 3)
                                && !ending)
                                .then_some(How::Compound)
                        } else {
                            None
                        };
                        if let Some(how) = how {
                            hits.push(Hit {
                                topic: target.topic,
                                exclude,
                                term: target.term,
                                how,
                                word,
                                negated_by: None,
                            });
                        }
                        continue;
                    }
                    Role::Stem { algorithm } => {
                        if !at_start {
                            continue;
                        }
                        let text = &normalized[word.0 as usize..word.1 as usize];
                        let Some(wanted) = self.stems.get(&(target.topic, target.term)) else {
                            continue;
                        };
                        let wanted_stem = &wanted.stems[usize::from(algorithm)];
                        if *wanted.keyword != *text
                            && !stem_with(&self.stemmers, algorithm, text, |stemmed| {
                                **wanted_stem == *stemmed
                            })
                        {
                            continue;
                        }
                        How::Stem
                    }
                    Role::Literal(anchor) => {
                        if anchor.holds(bytes, start) {
                            candidates.set(target.term);
                        }
                        continue;
                    }
                    Role::Near { side, prefix, near } => {
                        if at_start && (at_end || prefix) {
                            near_hits.push((near, side, w as u32));
                        }
                        continue;
                    }
                };
                hits.push(Hit {
                    topic: target.topic,
                    exclude: false,
                    term: target.term,
                    how,
                    word,
                    negated_by: None,
                });
            }
        }
        if !self.typos.is_empty() {
            let mut found = Vec::new();
            for &(start, end) in words {
                self.typos
                    .lookup(&normalized[start as usize..end as usize], &mut found);
                for id in &found {
                    for t in self.typo_targets.get(id).into_iter().flatten() {
                        hits.push(Hit {
                            topic: t.topic,
                            exclude: false,
                            term: t.term,
                            how: How::Typo,
                            word: (start, end),
                            negated_by: None,
                        });
                    }
                }
            }
        }
        if !near_hits.is_empty() {
            // Most hits are one side of a NEAR whose other side the message lacks: an everyday
            // word ("bij", "voor", "kapot") is a side of dozens. Only the NEARs with both sides
            // present are sorted and measured; two bits per NEAR say which sides were seen.
            let mut sides = vec![0u64; (self.near.len() * 2).div_ceil(64)];
            for &(n, side, _) in &near_hits {
                let bit = n as usize * 2 + usize::from(side);
                sides[bit / 64] |= 1 << (bit % 64);
            }
            // A NEAR's two bits share a word: its first bit is even.
            near_hits.retain(|&(n, ..)| {
                let bit = n as usize * 2;
                (sides[bit / 64] >> (bit % 64)) & 3 == 3
            });
            // Sorted by keyword, side, position: for each left-side word, the nearest right-side
            // word is found by binary search, so a text that repeats one side many times costs
            // n log n, not n².
            near_hits.sort_unstable();
            let mut start = 0;
            while start < near_hits.len() {
                let n = near_hits[start].0;
                let end = start + near_hits[start..].partition_point(|h| h.0 == n);
                let group = &near_hits[start..end];
                start = end;
                let split = group.partition_point(|h| h.1 == 0);
                let (left, right) = group.split_at(split);
                let spec = self.near[n as usize];
                let close = left.iter().find(|&&(_, _, a)| {
                    let i = right.partition_point(|h| h.2 < a);
                    [i.checked_sub(1), Some(i)]
                        .into_iter()
                        .flatten()
                        .filter_map(|j| right.get(j))
                        .any(|&(_, _, b)| a.abs_diff(b) <= spec.within)
                });
                if let Some(&(_, _, a)) = close {
                    hits.push(Hit {
                        topic: spec.topic,
                        exclude: false,
                        term: spec.term,
                        how: How::Exact,
                        word: words.get(a as usize).copied().unwrap_or_default(),
                        negated_by: None,
                    });
                }
            }
        }
        self.patterns
            .each_match(normalized, &candidates, |topic, pattern| {
                let offset = self.topics[topic as usize].keywords.len() as u32;
                hits.push(Hit {
                    topic,
                    exclude: false,
                    term: offset + pattern,
                    how: How::Pattern,
                    word: (0, 0),
                    negated_by: None,
                });
            });
        if hits.is_empty() {
            return (Vec::new(), Vec::new());
        }
        if self.any_negation {
            let scopes = self.negations(normalized, words);
            for hit in &mut hits {
                if !hit.exclude
                    && hit.how != How::Pattern
                    && self.topics[hit.topic as usize].options.negation
                {
                    hit.negated_by = scopes[word_at(words, hit.word.0 as usize)];
                }
            }
        }
        // Exclusions sort after the topic's keyword hits, so one pass sees a topic's whole
        // story; within a keyword the best way it matched comes first.
        hits.sort_unstable();
        hits.dedup_by(|b, a| {
            a.topic == b.topic
                && a.exclude == b.exclude
                && a.term == b.term
                && a.negated_by.is_some() == b.negated_by.is_some()
        });
        let mut found: Vec<((u8, u32), TopicMatch)> = Vec::new();
        let mut negated = Vec::new();
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
            let describe = |h: &Hit| {
                let term = h.term as usize;
                let word = &normalized[h.word.0 as usize..h.word.1 as usize];
                match (spec.keywords.get(term), h.how) {
                    (Some(keyword), How::Exact) => keyword.clone(),
                    (Some(keyword), How::Stem) => format!("{word} ~ {keyword}"),
                    (Some(keyword), How::Compound) => format!("{word} ⊃ {keyword}"),
                    (Some(keyword), _) => format!("{word} ≈ {keyword}"),
                    (None, _) => format!("/{}/", spec.patterns[term - spec.keywords.len()]),
                }
            };
            let mut matched: Vec<String> = Vec::new();
            let mut not_counted = Vec::new();
            for h in group {
                match h.negated_by {
                    None => {
                        // One line per keyword: the best way it matched.
                        if !group
                            .iter()
                            .any(|o| o.term == h.term && o.negated_by.is_none() && o.how < h.how)
                        {
                            matched.push(describe(h));
                        }
                    }
                    Some((s, e)) => {
                        let by = &normalized[s as usize..e as usize];
                        not_counted.push(format!("`{}` after `{by}`", describe(h)));
                    }
                }
            }
            if matched.is_empty() {
                negated.extend(not_counted);
                continue;
            }
            found.push((
                self.rank[topic as usize],
                TopicMatch {
                    topic: spec.id.clone(),
                    category: spec.category,
                    matched,
                },
            ));
        }
        found.sort_unstable_by_key(|(rank, _)| *rank);
        (found.into_iter().map(|(_, m)| m).collect(), negated)
    }
}

/// How many stems a thread remembers before it starts again (a few hundred KB at most).
const STEM_MEMO_WORDS: usize = 8_192;

thread_local! {
    /// Message words already stemmed on this thread, one map per algorithm. Snowball takes
    /// thousands of instructions a word, and a municipality's messages use the same few
    /// thousand words over and over. The algorithms are fixed ([`STEMMERS`]), so a memo is
    /// valid for every rulebook.
    static STEM_MEMO: std::cell::RefCell<[FxHashMap<Box<str>, Box<str>>; 2]> =
        std::cell::RefCell::new([FxHashMap::default(), FxHashMap::default()]);
}

/// Calls `check` with the `algorithm` stem of `word`, stemming it only the first time this
/// thread sees the word.
fn stem_with(
    stemmers: &[Stemmer; 2],
    algorithm: u8,
    word: &str,
    check: impl FnOnce(&str) -> bool,
) -> bool {
    let a = usize::from(algorithm);
    STEM_MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        let memo = &mut memo[a];
        if let Some(stem) = memo.get(word) {
            return check(stem);
        }
        let stem: Box<str> = stemmers[a].stem(word).into();
        let same = check(&stem);
        if memo.len() >= STEM_MEMO_WORDS {
            memo.clear();
        }
        memo.insert(word.into(), stem);
        same
    })
}

#[cfg(test)]
mod tests;
