//! The classifier's two costs: training, paid every time a rulebook compiles (on the
//! repository's examples, and on 10,000 to show where the one-second budget stands), and a
//! guess, paid for every message (the topic reading only when a script reads it). A decision
//! pays for `signals::guesses`: the whole message's guess and the most critical guess over it
//! and each of its sentences (`decision_guesses_*`). Run with
//! `cargo bench -p webcare-engine --bench classifier -- classifier_guess`.
//!
//! `Classifier::train` caches by a digest of the examples, so each training iteration changes
//! one example's text: what is measured is a real training, digest included.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use webcare_engine::classifier::Classifier;
use webcare_engine::examples::{Example, parse_examples};
use webcare_engine::normalize::normalize;
use webcare_engine::{RulebookSource, signals};

/// The examples of the embedded (default) rulebook.
fn repository_examples() -> Vec<Example> {
    RulebookSource::embedded()
        .examples
        .iter()
        .flat_map(|file| parse_examples(file).unwrap_or_else(|e| panic!("{e:?}")))
        .collect()
}

/// `count` examples cycled from `base`, each made distinct by a word of its own.
fn scaled(base: &[Example], count: usize) -> Vec<Example> {
    (0..count)
        .map(|i| {
            let mut example = base[i % base.len()].clone();
            example.text.push_str(&format!(" v{i}"));
            example
        })
        .collect()
}

fn training(c: &mut Criterion) {
    let base = repository_examples();
    let mut group = c.benchmark_group("classifier_train");
    group.sample_size(10);
    for (name, examples) in [
        (format!("repository_{}", base.len()), base.clone()),
        ("10000".to_owned(), scaled(&base, 10_000)),
    ] {
        let mut round = 0u64;
        group.throughput(Throughput::Elements(examples.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    round += 1;
                    let mut examples = examples.clone();
                    examples[0].text.push_str(&format!(" round{round}"));
                    examples
                },
                |examples| black_box(Classifier::train(&examples)),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

fn guessing(c: &mut Criterion) {
    let examples = repository_examples();
    let classifier = Classifier::train(&examples).unwrap_or_else(|e| panic!("{e}"));
    let messages: Vec<String> = examples.iter().map(|e| normalize(&e.text)).collect();
    let thirty_words = normalize(
        "Goedemiddag, sinds vorige week ligt er bij ons in de straat een losse stoeptegel \
         waar mijn moeder over gestruikeld is. Wie moet dit repareren en kan de gemeente \
         daar vandaag nog iets aan doen?",
    );
    assert_eq!(thirty_words.split(' ').count(), 34);
    let mut group = c.benchmark_group("classifier_guess");
    group.throughput(Throughput::Elements(1));
    group.bench_function("message_34_words", |b| {
        b.iter(|| black_box(classifier.guess(black_box(&thirty_words))));
    });
    // The topic reading (`msg.topic_guess`), paid only when a script reads it: the default
    // script does for a message whose keyword topic has an answer.
    group.bench_function("topic_message_34_words", |b| {
        b.iter(|| black_box(classifier.guess_topic(black_box(&thirty_words))));
    });
    // What every decision pays (`signals::guesses`): the guess for the whole message and the
    // most critical guess over it and each sentence of five or more words, from the raw text.
    let classifier = std::sync::Arc::new(classifier);
    let letter = "Goedemiddag, sinds vorige week ligt er bij ons in de straat een losse \
                  stoeptegel waar mijn moeder over gestruikeld is. Wie moet dit repareren en kan \
                  de gemeente daar vandaag nog iets aan doen? Bij de buren ruikt het trouwens \
                  al de hele ochtend sterk naar gas.";
    let letter_normalized = normalize(letter);
    group.bench_function("decision_guesses_3_sentences", |b| {
        b.iter(|| {
            black_box(signals::guesses(
                Some(&classifier),
                black_box(letter),
                black_box(&letter_normalized),
                // No words split or looked up beforehand: the guesses do both.
                &[],
                &[],
            ))
        });
    });
    group.throughput(Throughput::Elements(examples.len() as u64));
    group.bench_function(
        format!("decision_guesses_repository_{}", examples.len()),
        |b| {
            b.iter(|| {
                for (example, normalized) in examples.iter().zip(&messages) {
                    black_box(signals::guesses(
                        Some(&classifier),
                        &example.text,
                        normalized,
                        &[],
                        &[],
                    ));
                }
            });
        },
    );
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function(format!("repository_{}_messages", messages.len()), |b| {
        b.iter(|| {
            for message in &messages {
                black_box(classifier.guess(black_box(message)));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, training, guessing);
criterion_main!(benches);
