//! Cost per call of language detection and of the text features, the two per-message
//! extras the rule scripts can read. Detection only runs when the Dutch/English word count
//! is inconclusive, but it must stay in microseconds; the features run on every message and
//! must stay under about a microsecond. Run with `cargo bench -p webcare-engine --bench language`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use webcare_engine::features::extract;
use webcare_engine::language::LanguageDetector;

/// Short messages of the kind that reach detection: few or no common Dutch/English words.
const SHORT: [&str; 8] = [
    "mn rijbewijs is verlopen wat nu",
    "bins not collected again",
    "Wann wird der Sperrmüll abgeholt?",
    "Kiedy odbierają śmieci?",
    "pasaportumun süresi doldu ne yapmalıyım",
    "متى يتم جمع القمامة؟",
    "мій паспорт прострочений що робити",
    "o meu passaporte expirou, o que faço",
];

/// About 300 characters of realistic complaint, with a link, a phone number, an amount and emoji.
const LONG: &str = "Goedemiddag, voor de derde keer deze maand is de container in de Kerkstraat NIET \
    geleegd 😡😡 en nu ligt het afval over de hele stoep. Ik betaal € 312,50 \
    afvalstoffenheffing per jaar!!! Kunt u mij terugbellen op 06-12345678 of mailen naar \
    p.jansen@ziggo.nl? Melding staat ook op gemeente.nl/melding. Groet, Piet 👍🏽";

/// About 300 characters of plain question: no link, number or emoji, the common case.
const PLAIN: &str = "Goedemiddag, wij zijn vorige maand verhuisd naar een andere wijk en ik vroeg \
    me af wanneer de groene container hier wordt geleegd. Op de kalender in de app staat nog \
    ons oude adres en ik kan nergens vinden hoe ik dat aanpas. Moet ik daarvoor langskomen op \
    het stadskantoor of kan het ook online? Alvast bedankt voor de moeite";

fn bench(c: &mut Criterion) {
    let detector = LanguageDetector::new();
    let mut group = c.benchmark_group("language");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(SHORT.len() as u64));
    group.bench_function("detect/short_x8", |b| {
        b.iter(|| {
            for text in SHORT {
                black_box(detector.detect(black_box(text)));
            }
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("detect/300_chars", |b| {
        b.iter(|| black_box(detector.detect(black_box(LONG))))
    });
    group.finish();

    let mut group = c.benchmark_group("features");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    group.bench_function("extract/300_chars", |b| {
        b.iter(|| black_box(extract(black_box(LONG))))
    });
    group.bench_function("extract/300_chars_plain", |b| {
        b.iter(|| black_box(extract(black_box(PLAIN))))
    });
    group.bench_function("extract/short", |b| {
        b.iter(|| black_box(extract(black_box(SHORT[0]))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
