//! Decisions per second for the full pipeline (normalise, match, escalation script, governance
//! script, render) against rulebooks with 100 to 100,000 keywords, with the bare keyword scan on
//! the same corpus beside it. Run with `cargo bench -p webcare-engine --bench pipeline`; the
//! figures are recorded in BENCHMARKS.md.
//!
//! It decides on mimalloc, the `webcare` binary's allocator: a decision makes and frees a few
//! hundred small values, and with glibc's malloc (what a benchmark gets by default) a sixth of
//! its instructions went to the allocator, a cost the service does not pay. Figures up to
//! session 4 of BENCHMARKS.md were taken on glibc's malloc.

use std::cell::OnceCell;
use std::fmt::Write;
use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use webcare_engine::matcher::{MatchOptions, Matcher, MatcherSettings, TopicSpec};
use webcare_engine::normalize::normalize_into;
use webcare_engine::{Category, ChannelKind, DecideContext, Inbound, Rulebook, RulebookSource};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZES: [usize; 4] = [100, 1_000, 10_000, 100_000];
const KEYWORDS_PER_TOPIC: usize = 10;
const CORPUS: usize = 1_000;

/// A small deterministic generator, so every run benchmarks the same corpus.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % bound
    }
}

const SYLLABLES: [&str; 20] = [
    "ka", "ro", "mi", "ten", "bel", "straat", "wo", "ver", "zon", "dijk", "lan", "ge", "ber",
    "ster", "plein", "hof", "weg", "gra", "ven", "loo",
];

/// A made-up Dutch-looking word, unique per `i`.
fn keyword(i: usize, rng: &mut Lcg) -> String {
    let mut word = String::new();
    for _ in 0..2 + rng.next(2) {
        word.push_str(SYLLABLES[rng.next(SYLLABLES.len())]);
    }
    let mut n = i;
    loop {
        word.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    word
}

fn keywords(count: usize) -> Vec<String> {
    let mut rng = Lcg(7);
    (0..count).map(|i| keyword(i, &mut rng)).collect()
}

/// The default rulebook plus `count` generated keywords in topics that answer.
fn rulebook(words: &[String]) -> Rulebook {
    let mut source = RulebookSource::embedded();
    let mut topics = String::new();
    for (t, chunk) in words.chunks(KEYWORDS_PER_TOPIC).enumerate() {
        let list: Vec<String> = chunk.iter().map(|w| format!("\"{w}\"")).collect();
        let _ = write!(
            topics,
            "\n[[topic]]\nid = \"generated_{t}\"\ncategory = \"question\"\ntemplate = \"opening_hours\"\nkeywords = [{}]\n",
            list.join(", ")
        );
    }
    source.topics.text.push_str(&topics);
    Rulebook::compile(source).unwrap_or_else(|e| panic!("generated rulebook:\n{e}"))
}

/// 1,000 messages: 60% mention a generated keyword, 20% a default topic, 20% match nothing.
fn corpus(words: &[String]) -> Vec<Inbound> {
    let mut rng = Lcg(42);
    let filler = [
        "Goedemorgen, ik heb een vraag over",
        "Hallo gemeente, kunt u mij helpen met",
        "Hi, I would like to know more about",
        "Beste webcare, wat moet ik doen met",
    ];
    let known = [
        "Wat zijn de openingstijden van het stadskantoor?",
        "Ik ben mijn paspoort kwijt, wat nu?",
        "Ik heb een klacht over de behandeling aan de balie",
        "There is a fire in the building next door!",
        "Thanks, great help this morning!",
    ];
    let at = Utc
        .with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
        .single()
        .unwrap_or_default();
    (0..CORPUS)
        .map(|i| {
            let text = match rng.next(10) {
                0..=5 => format!(
                    "{} {} in onze wijk, alvast bedankt.",
                    filler[rng.next(filler.len())],
                    words[rng.next(words.len())]
                ),
                6 | 7 => known[rng.next(known.len())].to_owned(),
                _ => format!(
                    "{} iets heel anders dan verwacht, nummer {i}.",
                    filler[rng.next(filler.len())]
                ),
            };
            Inbound::from_text(format!("bench-{i}"), ChannelKind::Webchat, text, at)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(4));
    group.throughput(Throughput::Elements(CORPUS as u64));
    let context = DecideContext::default();
    for size in SIZES {
        // Built on first use, so a filtered run (`-- '/10000$'`) compiles only the sizes it
        // measures, and a profile of it shows deciding, not compiling.
        let setup: OnceCell<(Vec<Inbound>, Rulebook, Matcher)> = OnceCell::new();
        let setup = || {
            setup.get_or_init(|| {
                let words = keywords(size);
                let rulebook = rulebook(&words);
                let messages = corpus(&words);
                let matcher = scan_matcher(&words);
                (messages, rulebook, matcher)
            })
        };
        group.bench_function(format!("scan/{size}"), |b| {
            let (messages, _, matcher) = setup();
            let mut normalized = String::new();
            b.iter(|| {
                for m in messages {
                    normalize_into(&m.text, &mut normalized);
                    black_box(matcher.find(&normalized));
                }
            })
        });
        group.bench_function(format!("full/{size}"), |b| {
            let (messages, rulebook, _) = setup();
            b.iter(|| {
                for m in messages {
                    black_box(rulebook.decide(m, &context));
                }
            })
        });
    }
    group.finish();
}

/// The generated keywords alone, with the variants the default rulebook turns on, so the scan
/// pays for them.
fn scan_matcher(words: &[String]) -> Matcher {
    Matcher::build(
        words
            .chunks(KEYWORDS_PER_TOPIC)
            .enumerate()
            .map(|(t, chunk)| TopicSpec {
                id: format!("generated_{t}"),
                category: Category::Question,
                keywords: chunk.to_vec(),
                patterns: vec![],
                exclude: vec![],
                // What the default rulebook turns on, so the scan pays for the variants.
                options: MatchOptions {
                    stems: true,
                    compounds: true,
                    typos: true,
                    negation: false,
                },
            })
            .collect(),
        |_| 0,
        MatcherSettings::default(),
    )
    .unwrap_or_else(|_| panic!("matcher builds"))
}

criterion_group!(benches, bench);
criterion_main!(benches);
