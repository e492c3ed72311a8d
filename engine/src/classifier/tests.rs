//! The classifier's tests: determinism, features, training errors, the cache, and the
//! development-set measurement (ignored in CI) that chose the model and its parameters.

use super::reading::{add_scaled, softmax};
use super::*;
use crate::normalize::normalize;

fn example(text: &str, category: Category) -> Example {
    Example {
        text: text.to_owned(),
        category,
        topic: None,
        lang: Some("nl".to_owned()),
        line: 1,
        file: None,
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

/// The hand-made set with the topics its questions and reports are about.
fn with_topics() -> Vec<Example> {
    let topic_of = |text: &str| {
        [
            ("rijbewijs", "driving_licence"),
            ("paspoort", "passport"),
            ("afval", "waste"),
            ("lantaarn", "street_lights"),
            ("stoeptegel", "paving"),
        ]
        .iter()
        .find(|(word, _)| text.contains(word))
        .map(|(_, topic)| (*topic).to_owned())
    };
    hand_made()
        .into_iter()
        .map(|mut e| {
            if matches!(e.category, Category::Question | Category::Report) {
                e.topic = topic_of(&e.text);
            }
            e
        })
        .collect()
}

#[test]
fn the_topic_model_reads_the_topic_of_an_unseen_message() {
    let examples = with_topics();
    let classifier = fit(
        &examples,
        check(&examples).expect("valid"),
        &Params::DEFAULT,
    );
    // No keyword list involved: inflections and new phrasing still point at the topic.
    let guess = classifier
        .guess_topic(&normalize("rijbewijzen verlopen, wat nu"))
        .expect("five topics are named");
    assert_eq!(guess.topic, "driving_licence", "{guess:?}");
    assert!(guess.score > 0.5, "{guess:?}");
    let total: f32 = guess.probabilities.iter().map(|(_, p)| p).sum();
    assert!((total - 1.0).abs() < 1e-4);
    let lamp = classifier
        .guess_topic(&normalize("de lantaarnpaal bij ons brandt niet"))
        .expect("five topics are named");
    assert_eq!(lamp.topic, "street_lights", "{lamp:?}");
    assert!(
        lamp.words.iter().any(|w| w.starts_with("lantaarn")),
        "{lamp:?}"
    );
}

#[test]
fn the_named_topics_are_known_and_nothing_else() {
    let examples = with_topics();
    let classifier = fit(
        &examples,
        check(&examples).expect("valid"),
        &Params::DEFAULT,
    );
    for topic in [
        "driving_licence",
        "passport",
        "waste",
        "street_lights",
        "paving",
    ] {
        assert!(classifier.knows_topic(topic), "{topic}");
    }
    for other in [
        "",
        "a",
        "passpor",
        "passports",
        "Passport",
        "zzz",
        "driving",
        "waste ",
    ] {
        assert!(!classifier.knows_topic(other), "{other}");
    }
    assert!(
        !trained().knows_topic("passport"),
        "no topic model, no topics"
    );
}

#[test]
fn without_two_named_topics_there_is_no_topic_model() {
    // The category model is still trained; only the topic opinion is absent.
    assert!(
        trained()
            .guess_topic(&normalize("wat kost een paspoort"))
            .is_none()
    );
}

#[test]
fn the_topic_labels_are_part_of_what_is_cached() {
    // Same texts and categories, other topics: a different classifier, not the cached one.
    let named = with_topics();
    let mut renamed = with_topics();
    for e in &mut renamed {
        if e.topic.as_deref() == Some("passport") {
            e.topic = Some("travel_document".to_owned());
        }
    }
    assert_ne!(digest(&named), digest(&renamed));
    let classifier = Classifier::train(&renamed).expect("valid");
    let guess = classifier
        .guess_topic(&normalize("paspoort aanvragen"))
        .expect("topics are named");
    assert_eq!(guess.topic, "travel_document");
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
fn ascii_ngrams_are_the_ngrams_of_the_padded_word_in_order() {
    for word in [
        "a",
        "ab",
        "pas",
        "paspoort",
        "rijbewijsaanvraag",
        &"x".repeat(70),
    ] {
        for (min, max) in [(3, 5), (4, 4), (2, 3), (6, 6)] {
            let padded = format!("<{word}>");
            let units = padded.len();
            let mut expected = Vec::new();
            for start in 0..units {
                for len in min..=max {
                    if start + len <= units {
                        expected.push(
                            Fnv::kind(KIND_NGRAM)
                                .bytes(&padded.as_bytes()[start..start + len])
                                .0,
                        );
                    }
                }
            }
            let mut got = Vec::new();
            char_ngrams(word, min, max, |h| got.push(h));
            assert_eq!(got, expected, "{word} {min}..={max}");
        }
    }
}

#[test]
fn two_trainings_give_identical_guesses() {
    let first = trained();
    let second = trained();
    assert_eq!(first.rows.len(), second.rows.len());
    assert!((0..first.rows.len()).all(|r| {
        first
            .rows
            .row(r)
            .iter()
            .zip(second.rows.row(r))
            .all(|(a, b)| a.to_bits() == b.to_bits())
    }));
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
    let texts: Vec<String> = examples.iter().map(|e| normalize(&e.text)).collect();
    let prepared = prepare(examples, &texts, &categories, params);
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
    crate::examples::parse_examples(&file).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
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
            classifier.rows.len(),
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
