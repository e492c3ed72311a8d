//! Which language a message is written in, when the cheap Dutch/English word count of
//! [`crate::lexicon`] cannot tell: a citizen who writes in Polish, Arabic or Ukrainian should
//! reach someone who can read it, and the explanation should say "Pools", not "unknown".
//!
//! Detection is `whatlang` (trigram profiles plus alphabet statistics), restricted to the
//! languages a Dutch municipality realistically receives (`SUPPORTED` below). `lingua` was
//! measured against it on 1,118 labelled messages plus 48 short hand-written ones: lingua was
//! somewhat more accurate (97.3% against 96.0%) and knows Somali, but took 0.5–3 ms per call
//! even restricted to 13 languages and in its low-accuracy mode, a hundred times the engine's
//! whole per-message budget; whatlang takes tens of microseconds and loads no models. The
//! restriction matters as much as the library: unrestricted, whatlang called 57 of 530 Dutch
//! messages Afrikaans ("mn rijbewijs is verlopen wat nu", "hoe laat is het gemeentehuis open"),
//! because the two share most trigrams, and it was slower (every Latin-script language it knows
//! is scored). With Afrikaans out of the candidate set that confusion cannot happen.
//!
//! What the restriction costs: a language outside the set is reported as its nearest candidate
//! in the same script, normally with `reliable == false` (Somali, which whatlang does not know,
//! comes out as an unreliable Spanish or Turkish), but Russian is reported as Ukrainian and
//! Persian as Arabic, both possibly reliable. Adding Russian and Persian was measured too: it
//! lost correct Ukrainian and Arabic answers on short texts ("дякую 🙏" became Russian), so they
//! stay out until a municipality's traffic says otherwise. A script that only one language
//! writes (Greek, Chinese, Amharic, Tamil, …) is named by its script (`OWN_SCRIPT`); one that
//! none of the candidates writes and several others do (Devanagari) gives `None`, and
//! [`crate::signals::written_in`] then decides that a long enough message is not Dutch.
//!
//! Links are left in: a municipality's links are Dutch words (`gemeente.nl/afvalkalender`), and
//! removing web and e-mail addresses before detection made no difference on the labelled
//! messages but turned "klopt dit? https://www.rijksoverheid.nl/onderwerpen/paspoort" from
//! reliable Dutch into unreliable German.

use whatlang::Lang;

/// One language the detector may answer.
#[derive(Debug, Clone, Copy)]
struct Supported {
    lang: Lang,
    code: &'static str,
    name_nl: &'static str,
    name_en: &'static str,
}

/// The candidate set, in no particular order. Adding a language here is the only change needed;
/// keep it to languages citizens actually write in, because every extra Latin-script language
/// costs time on every call and is one more thing short Dutch can be mistaken for.
const SUPPORTED: [Supported; 12] = [
    lang(Lang::Nld, "nl", "Nederlands", "Dutch"),
    lang(Lang::Eng, "en", "Engels", "English"),
    lang(Lang::Deu, "de", "Duits", "German"),
    lang(Lang::Fra, "fr", "Frans", "French"),
    lang(Lang::Spa, "es", "Spaans", "Spanish"),
    lang(Lang::Por, "pt", "Portugees", "Portuguese"),
    lang(Lang::Ita, "it", "Italiaans", "Italian"),
    lang(Lang::Pol, "pl", "Pools", "Polish"),
    lang(Lang::Ron, "ro", "Roemeens", "Romanian"),
    lang(Lang::Tur, "tr", "Turks", "Turkish"),
    lang(Lang::Ara, "ar", "Arabisch", "Arabic"),
    lang(Lang::Ukr, "uk", "Oekraïens", "Ukrainian"),
];

/// Languages with a script of their own, which whatlang names by the script alone. Candidates
/// only for text in their script, so they cost nothing on Latin or Arabic text.
const OWN_SCRIPT: [Supported; 12] = [
    lang(Lang::Ell, "el", "Grieks", "Greek"),
    lang(Lang::Cmn, "zh", "Chinees", "Chinese"),
    lang(Lang::Jpn, "ja", "Japans", "Japanese"),
    lang(Lang::Kor, "ko", "Koreaans", "Korean"),
    lang(Lang::Heb, "he", "Hebreeuws", "Hebrew"),
    lang(Lang::Tha, "th", "Thais", "Thai"),
    lang(Lang::Amh, "am", "Amhaars", "Amharic"),
    lang(Lang::Tam, "ta", "Tamil", "Tamil"),
    lang(Lang::Kat, "ka", "Georgisch", "Georgian"),
    lang(Lang::Hye, "hy", "Armeens", "Armenian"),
    lang(Lang::Ben, "bn", "Bengaals", "Bengali"),
    lang(Lang::Pan, "pa", "Punjabi", "Punjabi"),
];

const fn lang(
    lang: Lang,
    code: &'static str,
    name_nl: &'static str,
    name_en: &'static str,
) -> Supported {
    Supported {
        lang,
        code,
        name_nl,
        name_en,
    }
}

/// The language of one message, as far as the detector can tell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detected {
    /// ISO 639-1, lowercase: `"nl"`, `"de"`.
    pub code: &'static str,
    /// The language's Dutch name, for explanations to Dutch-speaking staff: `"Duits"`.
    pub name_nl: &'static str,
    /// The language's English name: `"German"`.
    pub name_en: &'static str,
    /// How far the best candidate is ahead of the runner-up, from 0 to 1 (whatlang's measure,
    /// which also grows with the amount of text).
    pub confidence: f64,
    /// Whether the answer is good enough to act on. On the labelled messages 2 of 970 reliable
    /// answers were wrong (a dialect sentence and mixed Dutch/English spam); short
    /// texts of a word or two are almost never reliable, so rules should fall back on Dutch
    /// when this is false.
    pub reliable: bool,
}

/// Detects the language of message texts. Built once per rulebook and shared between threads:
/// building it allocates the candidate list, detecting allocates only per call.
#[derive(Debug, Clone)]
pub struct LanguageDetector {
    inner: whatlang::Detector,
}

impl Default for LanguageDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl LanguageDetector {
    pub fn new() -> Self {
        // The own-script languages are candidates too: Chinese and Japanese share Han
        // characters, and without both on the list whatlang took Chinese for Japanese.
        let allow = SUPPORTED
            .iter()
            .chain(OWN_SCRIPT.iter())
            .map(|s| s.lang)
            .collect();
        Self {
            inner: whatlang::Detector::with_allowlist(allow),
        }
    }

    /// The language of `text`, or `None` when it has no letters (empty, emoji, numbers) or only
    /// letters of a script none of the supported languages uses.
    pub fn detect(&self, text: &str) -> Option<Detected> {
        let info = self.inner.detect(head(text))?;
        // whatlang answers a script that only one language uses (Greek, Hebrew, ...) without
        // consulting the allowlist: those are named too, so a Greek message is not taken for
        // Dutch.
        let found = SUPPORTED
            .iter()
            .chain(OWN_SCRIPT.iter())
            .find(|s| s.lang == info.lang())?;
        Some(Detected {
            code: found.code,
            name_nl: found.name_nl,
            name_en: found.name_en,
            confidence: info.confidence(),
            reliable: info.is_reliable(),
        })
    }
}

/// How much of a message detection reads. Its cost grows with the text (on the shared VM,
/// 20–40 µs for a short message, 170 µs for 300 characters read whole, 45–60 µs read to
/// here), and the first 200 characters decided every labelled message as the whole text did;
/// a long e-mail stays in bounds.
const HEAD_CHARS: usize = 200;

fn head(text: &str) -> &str {
    match text.char_indices().nth(HEAD_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// Languages residents write in that whatlang has no profile for (it reads Frisian and
/// Papiamento as unreliable Dutch or Spanish), so the bot answered them as Dutch. The rulebook's
/// lexicon lists their common words instead (`[language] fy`, `pap`); the order here is the
/// order of [`crate::lexicon::Lexicon`]'s flags. (code, Dutch name, English name)
pub const WORD_LISTED: [(&str, &str, &str); 2] = [
    ("fy", "Fries", "Frisian"),
    ("pap", "Papiaments", "Papiamento"),
];

/// The Dutch and English names of a supported language code (`"de"` → `("Duits", "German")`),
/// for explanations and for checking the codes a rulebook mentions.
pub fn language_name(code: &str) -> Option<(&'static str, &'static str)> {
    SUPPORTED
        .iter()
        .chain(OWN_SCRIPT.iter())
        .find(|s| s.code == code)
        .map(|s| (s.name_nl, s.name_en))
        .or_else(|| {
            WORD_LISTED
                .iter()
                .find(|(c, _, _)| *c == code)
                .map(|(_, nl, en)| (*nl, *en))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> Option<&'static str> {
        LanguageDetector::new().detect(text).map(|d| d.code)
    }

    #[test]
    fn the_detector_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<LanguageDetector>();
    }

    #[test]
    fn each_supported_language_is_detected_on_a_short_realistic_message() {
        let cases = [
            ("nl", "wanneer wordt het grofvuil bij ons opgehaald"),
            ("en", "bins not collected again"),
            ("de", "Wann wird der Sperrmüll abgeholt?"),
            ("fr", "mon passeport a expiré, que faire"),
            ("es", "¿Cuándo recogen la basura?"),
            ("pt", "o meu passaporte expirou, o que faço"),
            ("it", "il mio passaporto è scaduto cosa devo fare"),
            ("pl", "Kiedy odbierają śmieci?"),
            ("ro", "pașaportul meu a expirat, ce trebuie să fac"),
            ("tr", "pasaportumun süresi doldu ne yapmalıyım"),
            ("ar", "متى يتم جمع القمامة؟"),
            ("uk", "мій паспорт прострочений що робити"),
        ];
        let detector = LanguageDetector::new();
        for (want, text) in cases {
            let got = detector.detect(text);
            assert_eq!(got.map(|d| d.code), Some(want), "{text}");
        }
        // Every supported language has a case above.
        assert_eq!(cases.len(), SUPPORTED.len());
    }

    #[test]
    fn longer_messages_are_detected_reliably() {
        let cases = [
            (
                "de",
                "Guten Tag, wann wird bei uns der Biomüll abgeholt? Ich finde den Kalender nicht auf der Website.",
            ),
            (
                "pl",
                "Dzień dobry, od tygodnia nikt nie odebrał śmieci z naszej ulicy, co mam zrobić?",
            ),
            (
                "tr",
                "Merhaba, yeni adresime nasıl kayıt olabilirim? Randevu almam gerekiyor mu?",
            ),
            (
                "uk",
                "Добрий день, де я можу зареєструватися за новою адресою? Чи потрібно записатися заздалегідь?",
            ),
            (
                "ar",
                "مرحبا، كم تكلفة جواز السفر الهولندي وكم من الوقت يستغرق الحصول عليه؟",
            ),
        ];
        let detector = LanguageDetector::new();
        for (want, text) in cases {
            let got = detector.detect(text).expect(text);
            assert_eq!(got.code, want, "{text}");
            assert!(got.reliable, "{text}: {got:?}");
        }
    }

    #[test]
    fn dutch_without_accents_or_with_typos_is_not_taken_for_afrikaans_or_german() {
        // Unrestricted, whatlang calls most of these Afrikaans; German is a candidate here,
        // so it is the confusion left to guard against.
        for text in [
            "mn rijbewijs is verlopen wat nu",
            "wanneer word het grofvuil opgehaald",
            "ik snap mn aanslag niet, waarom is de rioolheffing zo veel hoger dan vorig jaar",
            "de container is weer niet geleegd",
            "hoe laat is het gemeentehuis open",
            "is het stadskantoor zaterdag open",
            "wat is jullie telefoonnummer",
            "ik wil een paspoort aanvragen, moet ik daarvoor een afspraak maken",
            "lantaarnpaal kapot bij ons in de straat",
            "De melding over de losse tegels heb ik in januari al gedaan. Het is nu april.",
            "heb al 3 keer gebelt maar niemand neemt op",
            "waarom is de weg afgesloten, ik moet naar me werk",
            "IK RUIK OVERAL GAS IN HET TRAPPENHUIS",
            "Coordinator van de opvang graag, gaat over een kind op school",
        ] {
            assert_eq!(code(text), Some("nl"), "{text}");
        }
    }

    #[test]
    fn text_without_words_gives_nothing_or_nothing_reliable() {
        let detector = LanguageDetector::new();
        for text in [
            "",
            "   ",
            "👍👍",
            "❤️❤️❤️",
            "🍕🍕🍕🍕🍕🍕🍕🍕",
            "123",
            "06-12345678",
            "1234 AB 12",
            "?!?!",
            "asdfghjkl",
            "ok",
        ] {
            if let Some(d) = detector.detect(text) {
                assert!(!d.reliable, "{text:?}: {d:?}");
            }
        }
    }

    #[test]
    fn a_language_outside_the_set_is_not_reported_reliably_as_another() {
        // Somali: whatlang has no profile for it, so it lands on some Latin candidate, but
        // must not be acted on as such.
        let detector = LanguageDetector::new();
        for text in [
            "Goorma ayaa qashinka la qaadayaa?",
            "baasaboorkayga wuu dhacay maxaan sameeyaa",
        ] {
            if let Some(d) = detector.detect(text) {
                assert!(!d.reliable, "{text}: {d:?}");
            }
        }
    }

    #[test]
    fn a_script_of_its_own_names_its_language_rather_than_passing_for_dutch() {
        assert_eq!(code("Πότε μαζεύουν τα σκουπίδια;"), Some("el"));
        assert_eq!(code("我的护照丢了，我该怎么办？"), Some("zh"));
        assert_eq!(code("ሰላም፡ ናይ ገንዘብ ሓገዝ ብኸመይ ክሓትት ይኽእል?"), Some("am"));
        assert_eq!(language_name("el"), Some(("Grieks", "Greek")));
    }

    #[test]
    fn a_long_message_is_read_from_its_start() {
        let long = "Sehr geehrte Damen und Herren, seit drei Wochen wird unsere Biotonne nicht \
                    mehr geleert, obwohl wir sie jedes Mal rechtzeitig an die Straße stellen. "
            .repeat(20);
        assert_eq!(head(&long).chars().count(), HEAD_CHARS);
        assert_eq!(code(&long), Some("de"));
        assert_eq!(head("kort"), "kort");
        assert_eq!(head(&"ë".repeat(300)).chars().count(), HEAD_CHARS);
    }

    #[test]
    fn links_count_as_the_words_they_are_made_of() {
        // Why addresses are not removed before detection (see the module docs).
        assert_eq!(
            code(
                "klopt dit? https://www.rijksoverheid.nl/onderwerpen/paspoort-en-identiteitskaart"
            ),
            Some("nl")
        );
    }

    #[test]
    fn names_cover_every_supported_code_once() {
        assert_eq!(language_name("de"), Some(("Duits", "German")));
        assert_eq!(language_name("uk"), Some(("Oekraïens", "Ukrainian")));
        assert_eq!(language_name("af"), None);
        assert_eq!(language_name("NL"), None);
        for (i, s) in SUPPORTED.iter().enumerate() {
            assert_eq!(language_name(s.code), Some((s.name_nl, s.name_en)));
            assert_eq!(s.code.len(), 2);
            assert!(
                SUPPORTED[i + 1..]
                    .iter()
                    .all(|o| o.code != s.code && o.lang != s.lang)
            );
        }
    }

    #[test]
    fn detected_carries_the_names() {
        let d = LanguageDetector::new()
            .detect("Wann wird der Sperrmüll abgeholt?")
            .expect("german");
        assert_eq!((d.code, d.name_nl, d.name_en), ("de", "Duits", "German"));
        assert!((0.0..=1.0).contains(&d.confidence));
    }
}
