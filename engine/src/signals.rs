//! What the engine reads from a message besides its topics, for the scripts to weigh: the
//! language it is written in, the classifier's guess, and plain facts about the text.
//!
//! Keywords say what a governance lead thought of; these say what the keywords could not: that
//! a message is Polish (so no Dutch template answers it), that a letter which never says
//! "journalist" reads like press, that the last sentence of a long question is about a gas
//! smell. None of them decides anything by itself; `escalation.rhai` does.

use std::sync::{Arc, OnceLock};

use rhai::ImmutableString;

use crate::classifier::{Classifier, Guess};
use crate::decision::{Category, Language};
use crate::language::{LanguageDetector, language_name};
use crate::lexicon::Counted;
use crate::normalize::normalize_into;
use crate::script::{GuessView, TopicGuessView};

/// The categories a person must see in time, whatever else a message is about.
pub const CRITICAL: [Category; 5] = [
    Category::Crisis,
    Category::Distress,
    Category::Abuse,
    Category::Legal,
    Category::Press,
];

/// The language a message is written in.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// ISO 639-1.
    pub code: &'static str,
    /// Its English name, for reasons a team reads.
    pub name: &'static str,
    /// The language replies go out in: this one when templates speak it, else the default.
    pub reply: Language,
    /// Whether the bot's templates are in this language (Dutch and English always are).
    pub supported: bool,
}

/// Below this many words the Dutch/English word lists cannot tell a language; and when fewer
/// than a third of the words are known Dutch or English, the text may be another language.
const FEW_KNOWN_WORDS: u32 = 3;

/// Known words are believed when they are at least a third of the message, or at least
/// [`FEW_KNOWN_WORDS`] and a fifth of it. Three known words alone were not enough: a French
/// tourist's 25 words with "on", "containers" and "camping" among them read as English and got
/// the English waste answer (one in ten messages in another language was taken for Dutch or
/// English that way, across the labelled sets; with the fifth one in fifty, and Dutch or
/// English sent to the detector went from 1.8% to 2.0%).
fn lists_know_it(known_words: u32, word_count: usize) -> bool {
    let known = known_words as usize;
    known * 3 >= word_count.max(1) || (known_words >= FEW_KNOWN_WORDS && known * 5 >= word_count)
}

/// Which language `text` is in. The rulebook's word lists answer cheaply for most messages;
/// the detector is asked only when they know too few of the words.
pub fn written_in(
    detector: &LanguageDetector,
    text: &str,
    counted: &Counted,
    word_count: usize,
    speaks: impl Fn(&str) -> bool,
) -> Written {
    let known_words = counted.known;
    let counted_as = counted.language;
    let listed = |reply: Language| Written {
        code: reply.as_str(),
        name: match reply {
            Language::Nl => "Dutch",
            Language::En => "English",
        },
        reply,
        supported: true,
    };
    // Frisian and Papiamento, which the detector does not know, by their own common words:
    // at least two, and more than the Dutch or English ones.
    if let Some((code, count)) = counted.listed
        && count >= 2
        && count > known_words
    {
        return Written {
            code,
            name: language_name(code).map_or(code, |(_, en)| en),
            reply: counted_as,
            supported: speaks(code),
        };
    }
    if lists_know_it(known_words, word_count) {
        return listed(counted_as);
    }
    // The detector reads only the start of a long message itself (see `language::HEAD_CHARS`).
    match detector.detect(text) {
        Some(d) if d.reliable => match d.code {
            "nl" => listed(Language::Nl),
            "en" => listed(Language::En),
            code => Written {
                code,
                name: d.name_en,
                reply: counted_as,
                supported: speaks(code),
            },
        },
        // An unsure Dutch or English with a known word among the unknown ones is believed:
        // "kolk verstopt met bladeren hoek Esdoornlaan".
        Some(d) if matches!(d.code, "nl" | "en") && known_words > 0 => listed(counted_as),
        // Neither the word lists nor the detector know it (Indonesian, Lithuanian, Tagalog,
        // Somali, Tigrinya, Hindi …): a message long enough to be sure it is not Dutch or
        // English goes to a person rather than being answered as Dutch.
        _ if word_count >= UNRECOGNISED_WORDS => Written {
            code: "und",
            name: "a language the detector does not know",
            reply: counted_as,
            supported: false,
        },
        _ => listed(counted_as),
    }
}

/// From this many words, a text the word lists and the detector cannot place is taken for a
/// language nobody configured, not for Dutch. Shorter texts ("Top 👍", "ok dank u") stay Dutch.
const UNRECOGNISED_WORDS: usize = 6;

/// A category's name as scripts read it, made once per process rather than once per message
/// and category (a guess lists every category).
fn category_name(category: Category) -> ImmutableString {
    static NAMES: OnceLock<[ImmutableString; Category::ALL.len()]> = OnceLock::new();
    let names = NAMES.get_or_init(|| Category::ALL.map(|c| c.as_str().into()));
    // `ALL` is in declaration order, so the discriminant is the index.
    names[category as usize].clone()
}

fn view(guess: &Guess) -> GuessView {
    GuessView {
        category: category_name(guess.category),
        score: f64::from(guess.score),
        words: guess.words.join(", ").into(),
        // The categories' own names: no count to keep per category and message.
        probabilities: guess
            .probabilities
            .iter()
            .map(|(c, p)| (c.as_str(), f64::from(*p)))
            .collect(),
    }
}

/// `msg.topic_guess`: the classifier's reading of which topic the message is about. `words`
/// and `vocabulary` as for [`guesses`].
pub fn topic_guess(
    classifier: Option<&Classifier>,
    normalized: &str,
    words: &[(u32, u32)],
    vocabulary: &[u32],
) -> TopicGuessView {
    let Some(guess) = classifier.and_then(|c| c.guess_topic_known(normalized, words, vocabulary))
    else {
        return TopicGuessView::default();
    };
    TopicGuessView {
        topic: guess.topic,
        score: f64::from(guess.score),
        words: guess.words.join(", ").into(),
        // The classifier's own names: no copy of each topic's name per message.
        probabilities: guess
            .probabilities
            .into_iter()
            .map(|(t, p)| (t, f64::from(p)))
            .collect(),
    }
}

/// The fewest words a sentence needs for a guess of its own: "Ik ben het zat" (fed up) read
/// alone sounds like distress; a danger told in a sentence takes more words than that.
const SENTENCE_WORDS: usize = 5;

/// The fewest words a clause (a piece of a sentence between commas) needs for a guess of its
/// own. A danger or a threat is often told after a comma ("Idee: bespaar op de beveiliging van
/// de wethouder. Scheelt geld, en dan kunnen wij hem eindelijk eens goed te pakken krijgen";
/// "de boom boven tent 14 is half omgewaaid, er slaapt een gezin in die tent"), and the
/// sentence around it averages it away. A clause has less context than a sentence, so it needs
/// more words: with seven, "Mijn zoontje van 6 heeft een waterpistool, mag dat op Koningsdag?"
/// read as an emergency. Cross-validation (58,930 examples), from no clauses to clauses of
/// twelve, ten, eight, six and five words: critical to its team 18,811, 18,818, 18,819, 18,825,
/// 18,831, 18,832; acceptable 57,790, 57,796, 57,793, 57,798, 57,804, 57,806; automated 15,960,
/// 15,921, 15,880, 15,816, 15,708, 15,633. Eight is where a critical message caught stops
/// costing more than about ten automated answers.
const CLAUSE_WORDS: usize = 8;

/// The sentences of a message worth a guess of their own: at least [`SENTENCE_WORDS`] words
/// each, and only when there are two or more (one sentence is the whole message); and the
/// clauses of any sentence with a comma, at least [`CLAUSE_WORDS`] words each.
///
/// Every message asks, so the text is split by bytes (the marks are ASCII, and a byte of a
/// longer character is never ASCII) and a part's words are counted only up to the number it
/// needs: splitting by `char` and counting every word was a sixth of the classifier's cost in
/// the benchmark.
fn parts_read_alone<'t>(text: &'t str) -> Vec<&'t str> {
    let push = |parts: &mut Vec<&'t str>, part: &'t str| {
        let part = part.trim();
        if !part.is_empty() {
            parts.push(part);
        }
    };
    let (mut sentences, mut clauses) = (Vec::new(), Vec::new());
    let (mut start, mut clause_start) = (0, 0);
    for (i, b) in text.bytes().enumerate() {
        let ends_sentence = matches!(b, b'.' | b'!' | b'?' | b'\n' | b';');
        // A piece of a sentence that has a comma is a clause: the first ends at the comma, the
        // last at the sentence's end.
        if b == b',' || (ends_sentence && clause_start > start) {
            push(&mut clauses, &text[clause_start..i]);
        }
        if b == b',' || ends_sentence {
            clause_start = i + 1;
        }
        if ends_sentence {
            push(&mut sentences, &text[start..i]);
            start = i + 1;
        }
    }
    if clause_start > start {
        push(&mut clauses, &text[clause_start..]);
    }
    push(&mut sentences, &text[start..]);
    // Most messages are one sentence without a comma: then no words need counting.
    if sentences.len() >= 2 {
        sentences.retain(|part| has_words(part, SENTENCE_WORDS));
    }
    if sentences.len() < 2 {
        sentences.clear();
    }
    clauses.retain(|part| has_words(part, CLAUSE_WORDS));
    sentences.append(&mut clauses);
    sentences
}

/// Whether `text` has at least `n` words as `split_whitespace` splits it, counting no further.
fn has_words(text: &str, n: usize) -> bool {
    n == 0 || text.split_whitespace().nth(n - 1).is_some()
}

/// The classifier's guess for the whole message, and the most probable critical category
/// over the whole message and each of its sentences and long clauses ([`parts_read_alone`]): a
/// danger told in one sentence of a long letter about something else must not be averaged
/// away by the rest. `words` are the words
/// of `normalized` ([`crate::normalize::word_ranges`]) and `vocabulary` is what the lexicon
/// found of them ([`Counted::vocabulary`]), either possibly empty.
pub fn guesses(
    classifier: Option<&Arc<Classifier>>,
    text: &str,
    normalized: &str,
    words: &[(u32, u32)],
    vocabulary: &[u32],
) -> (GuessView, GuessView) {
    let Some(classifier) = classifier else {
        return (GuessView::default(), GuessView::default());
    };
    // Read once: each sentence's guess is made from the whole message's lookups.
    let reading = classifier.read_known(normalized, words, vocabulary);
    let whole = reading.guess();
    let most_critical = |g: &Guess| {
        CRITICAL.iter().map(|c| (*c, g.probability(*c))).fold(
            (Category::Unknown, 0.0f32),
            |best, next| {
                if next.1 > best.1 { next } else { best }
            },
        )
    };
    let mut critical = (most_critical(&whole), false);
    let mut buffer = String::new();
    let mut winner = String::new();
    for part in parts_read_alone(text) {
        normalize_into(part, &mut buffer);
        // The words that weighed most are found only for the part that wins: the same
        // guess made again, so the same words.
        let best = most_critical(&reading.guess_part_unexplained(&buffer));
        if best.1 > critical.0.1 {
            critical = (best, true);
            winner.clone_from(&buffer);
        }
    }
    let ((category, score), from_sentence) = critical;
    let from = from_sentence.then(|| reading.guess_part(&winner));
    let whole = view(&whole);
    let critical = GuessView {
        category: if category == Category::Unknown {
            crate::script::empty_string()
        } else {
            category_name(category)
        },
        score: f64::from(score),
        // Most messages have no sentence of their own: then the words and probabilities are
        // the whole message's, shared rather than made twice.
        ..from.as_ref().map_or_else(|| whole.clone(), view)
    };
    (whole, critical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_names_line_up_with_the_enum() {
        for c in Category::ALL {
            assert_eq!(category_name(c).as_str(), c.as_str());
        }
    }

    /// The sentences as they were found before the byte scan: by `char`, every word counted.
    fn sentences_by_char(text: &str) -> Vec<&str> {
        let all: Vec<&str> = text.split(['.', '!', '?', '\n', ';']).collect();
        let long = |n: usize| move |s: &&str| s.split_whitespace().count() >= n;
        let sentences: Vec<&str> = all
            .iter()
            .map(|s| s.trim())
            .filter(long(SENTENCE_WORDS))
            .collect();
        let clauses = all
            .iter()
            .filter(|s| s.contains(','))
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(long(CLAUSE_WORDS));
        let mut parts = if sentences.len() >= 2 {
            sentences
        } else {
            Vec::new()
        };
        parts.extend(clauses);
        parts
    }

    #[test]
    fn the_byte_scan_finds_the_sentences_the_char_split_found() {
        let pieces = [
            "een",
            "twee drie",
            " ",
            "\t",
            "\u{b}",
            "\u{c}",
            "\r",
            "\n",
            ".",
            "!",
            "?",
            ";",
            "\u{a0}",
            "\u{85}",
            "\u{2003}",
            "é",
            "zo'n",
            "…",
            "👍",
            "x,y",
            ",",
            "  vier vijf zes ",
        ];
        let mut rng = 7u64;
        let mut checked = 0;
        let mut next = |bound: u64| {
            rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (rng >> 33) % bound
        };
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..8 + next(24) {
                text.push_str(pieces[next(pieces.len() as u64) as usize]);
                if next(2) == 1 {
                    text.push(' ');
                }
            }
            assert_eq!(
                parts_read_alone(&text),
                sentences_by_char(&text),
                "{text:?}"
            );
            checked += usize::from(!parts_read_alone(&text).is_empty());
        }
        assert!(checked > 1_000, "too few texts with sentences: {checked}");
        for n in 0..7 {
            for text in [
                "",
                " a  b\u{b}c\u{c}d\re\tf ",
                "a\u{a0}b c",
                "één twee drie vier",
            ] {
                assert_eq!(
                    has_words(text, n),
                    text.split_whitespace().count() >= n,
                    "{text:?} {n}"
                );
            }
        }
    }

    #[test]
    fn a_clause_of_eight_words_is_read_on_its_own() {
        assert_eq!(
            parts_read_alone(
                "Scheelt geld, en dan kunnen wij hem eindelijk eens goed te pakken krijgen."
            ),
            ["en dan kunnen wij hem eindelijk eens goed te pakken krijgen"],
            "one sentence: its long clause alone"
        );
        assert!(
            parts_read_alone("Mijn zoontje van 6 heeft een waterpistool, mag dat op Koningsdag?")
                .is_empty(),
            "seven words are not a clause of their own"
        );
        assert_eq!(
            parts_read_alone(
                "Wanneer wordt het grofvuil opgehaald? Bij de bushalte achter de school gaan ze \
                 elkaar afslachten, eentje ligt al"
            ),
            [
                "Wanneer wordt het grofvuil opgehaald",
                "Bij de bushalte achter de school gaan ze elkaar afslachten, eentje ligt al",
                "Bij de bushalte achter de school gaan ze elkaar afslachten"
            ],
            "the sentences, then the long clauses"
        );
    }

    #[test]
    fn a_sentence_is_five_words_and_one_sentence_is_the_message() {
        assert!(parts_read_alone("Wanneer wordt het grofvuil opgehaald?").is_empty());
        assert!(
            parts_read_alone("De container is weer niet geleegd. Ik ben het zat.").is_empty(),
            "four words are not a sentence of their own"
        );
        assert_eq!(
            parts_read_alone(
                "Wanneer wordt het grofvuil opgehaald? Oja. Bij de buren ruikt het naar gas!"
            ),
            [
                "Wanneer wordt het grofvuil opgehaald",
                "Bij de buren ruikt het naar gas"
            ]
        );
    }

    /// What the word lists would say: `known` Dutch words, `listed` Frisian or Papiamento ones.
    fn counted(known: u32, listed: Option<(&'static str, u32)>) -> Counted {
        Counted {
            sentiment: crate::decision::Sentiment {
                label: crate::decision::SentimentLabel::Neutral,
                score: 0,
            },
            language: Language::Nl,
            known,
            listed,
            words: 0,
            vocabulary: Vec::new(),
        }
    }

    #[test]
    fn few_known_words_ask_the_detector() {
        let detector = LanguageDetector::new();
        let german = written_in(
            &detector,
            "Wann wird der Sperrmüll bei uns in der Straße abgeholt?",
            &counted(0, None),
            10,
            |_| false,
        );
        assert_eq!(
            (german.code, german.supported, german.reply),
            ("de", false, Language::Nl)
        );
        let dutch = written_in(
            &detector,
            "wanneer is de ophaaldag",
            &counted(3, None),
            4,
            |_| false,
        );
        assert_eq!((dutch.code, dutch.supported), ("nl", true));
        let english = written_in(
            &detector,
            "bins not collected again this week",
            &Counted {
                language: Language::Nl,
                ..counted(1, None)
            },
            6,
            |_| false,
        );
        assert_eq!((english.code, english.reply), ("en", Language::En));
        let short = written_in(&detector, "ok", &counted(0, None), 1, |_| false);
        assert_eq!(short.code, "nl", "too short to tell: the default");
        // Three listed words ("on", "containers", "camping") among 22 French ones do not make
        // it English; three among twelve still do.
        let french = written_in(
            &detector,
            "Bonjour, on est des touristes français, où est-ce qu'on peut jeter nos poubelles au camping? Les containers sont fermés à clé",
            &Counted {
                language: Language::En,
                ..counted(3, None)
            },
            22,
            |_| false,
        );
        assert_eq!((french.code, french.supported), ("fr", false));
        let dutch = written_in(
            &detector,
            "hoi ik wil graag weten wanneer de container in de Lindestraat wordt geleegd",
            &counted(3, None),
            12,
            |_| false,
        );
        assert_eq!(dutch.code, "nl");
    }

    #[test]
    fn a_language_nobody_configured_goes_to_a_person_not_answered_as_dutch() {
        let detector = LanguageDetector::new();
        // Indonesian and Lithuanian: the detector knows neither, and the word lists know none
        // of the words.
        for text in [
            "selamat pagi, bagaimana cara memperpanjang paspor anak saya di kota ini",
            "laba diena, kaip galiu pratęsti savo paso galiojimą jūsų savivaldybėje",
        ] {
            let words = text.split_whitespace().count();
            let written = written_in(&detector, text, &counted(0, None), words, |_| false);
            assert_eq!((written.code, written.supported), ("und", false), "{text}");
        }
        // Short Dutch full of street names and jargon stays Dutch.
        let street = written_in(
            &detector,
            "kolk verstopt met bladeren hoek Esdoornlaan",
            &counted(1, None),
            6,
            |_| false,
        );
        assert_eq!((street.code, street.supported), ("nl", true));
        let few = written_in(&detector, "top 👍 merci", &counted(0, None), 2, |_| false);
        assert_eq!(few.code, "nl", "too few words to call it another language");
    }

    #[test]
    fn frisian_and_papiamento_are_told_by_their_own_words_not_answered_as_dutch() {
        let detector = LanguageDetector::new();
        let frisian = written_in(
            &detector,
            "Tige tank foar de flugge help by it oanfreegjen fan myn paspoart",
            &counted(1, Some(("fy", 4))),
            11,
            |_| false,
        );
        assert_eq!(
            (frisian.code, frisian.name, frisian.supported, frisian.reply),
            ("fy", "Frisian", false, Language::Nl),
            "a person answers; a holding reply in Dutch"
        );
        let one_word = written_in(
            &detector,
            "Ik ben een grote fan van de nieuwe bibliotheek",
            &counted(5, Some(("fy", 1))),
            9,
            |_| false,
        );
        assert_eq!(
            one_word.code, "nl",
            "one Frisian-looking word is not Frisian"
        );
        let mostly_dutch = written_in(
            &detector,
            "hoi ik heb een vraag over de tas en de kas van het buurthuis",
            &counted(6, Some(("pap", 2))),
            13,
            |_| false,
        );
        assert_eq!(
            mostly_dutch.code, "nl",
            "more Dutch words than Papiamento ones"
        );
    }
}
