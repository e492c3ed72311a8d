//! The text facts' tests, one per fact, with the messages people actually write.

use super::*;

fn f(text: &str) -> TextFeatures {
    extract(text)
}

#[test]
fn empty_text_has_no_features() {
    assert_eq!(f(""), TextFeatures::default());
    assert_eq!(
        f("   \n\t "),
        TextFeatures {
            chars: 6,
            ..TextFeatures::default()
        }
    );
}

#[test]
fn counts_characters_words_and_punctuation() {
    let x = f("Waarom is de weg afgesloten??? Niemand weet het!");
    assert_eq!(x.chars, 48);
    assert_eq!(x.words, 8);
    assert_eq!(x.question_marks, 3);
    assert_eq!(x.exclamation_marks, 1);
    assert_eq!(f("wat kost een paspoort?").question_marks, 1);
    assert_eq!(f("é").chars, 1);
    // Emoji and lone punctuation are not words.
    assert_eq!(f("top 👍 - echt!!").words, 2);
    assert_eq!(f("bedankt🙏super").words, 2);
}

#[test]
fn finds_web_addresses() {
    let cases = [
        ("kijk op https://www.gemeente.nl/afval", 1),
        ("http://example.com", 1),
        ("www.rb-outlet-sale.shop", 1),
        ("zie gemeente.nl/afval voor de kalender", 1),
        ("staat op gemeente.nl.", 1),
        ("klik bit.ly/3xYz", 1),
        ("Gratis iPhone!!! Klik hier: win-nu-prijs.nl 🎁", 1),
        ("t.me/cryptowinst", 1),
        ("(zie www.gemeente.nl)", 1),
        ("WWW.GEMEENTE.NL", 1),
        ("digid-verificatie-nl.com en snelrijk-nu.biz", 2),
        ("mijn.overheid.nl/login?x=1", 1),
    ];
    for (text, want) in cases {
        assert_eq!(f(text).urls, want, "{text}");
    }
}

#[test]
fn prose_with_dots_is_not_a_web_address() {
    for text in [
        "ik heb het gedaan.nu ben ik klaar",
        "Dat is gedaan.Ik wacht nog",
        "d.w.z. morgen",
        "o.a. de stoep",
        "bijv. de container",
        "om 10.30 uur",
        "versie 1.2.3",
        "het kost 12.50",
        "etc.",
        "...",
        "ja.dat klopt",
    ] {
        assert_eq!(f(text).urls, 0, "{text}");
    }
}

#[test]
fn finds_email_addresses() {
    assert_eq!(f("mail naar info@gemeente.nl aub").emails, 1);
    assert_eq!(f("(jan.de.vries+wmo@hotmail.com)").emails, 1);
    assert_eq!(f("mailto:klantcontact@voorbeeld.nl").emails, 1);
    assert_eq!(f("a@b.nl, c@d.com.").emails, 2);
    // An address is not also a web address.
    assert_eq!(f("info@gemeente.nl").urls, 0);
    // Mentions and half addresses are not.
    assert_eq!(f("@gemeente kunnen jullie reageren").emails, 0);
    assert_eq!(f("mail@ons gewoon").emails, 0);
    assert_eq!(f("stuur naar @ info").emails, 0);
}

#[test]
fn finds_dutch_and_international_phone_numbers() {
    let cases = [
        ("bel me op 06-12345678", 1),
        ("0612345678", 1),
        ("06 12345678", 1),
        ("06 - 12345678", 1),
        ("06 12 34 56 78", 1),
        ("06-1234 5678", 1),
        ("(06)12345678", 1),
        ("+31 6 1234 5678", 1),
        ("+31612345678", 1),
        ("+31 (0)6 12345678", 1),
        ("0031 6 12345678", 1),
        ("+32 2 123 45 67", 1),
        ("020 123 4567", 1),
        ("(020) 123 4567", 1),
        ("020-1234567", 1),
        ("0800-0113", 1),
        ("0900-8844", 1),
        ("0800 1234567", 1),
        ("bel 14 020 voor een afspraak", 1),
        ("tel: 06-12345678.", 1),
        ("06-12345678 of 020 123 4567", 2),
        ("06 12345678 06 87654321", 2),
        ("Bel mij terug op 0612345678, ik woon op nummer 12", 1),
    ];
    for (text, want) in cases {
        assert_eq!(f(text).phones, want, "{text}");
    }
}

#[test]
fn numbers_that_are_not_phone_numbers() {
    for text in [
        "bel 112!",
        "bel 112 nu",
        "Kerkstraat 12",
        "Kerkstraat 112a",
        "1234 AB Voorbeeld",
        "1234AB",
        "op 12-03-2024 gemeld",
        "op 01-03-2024 10:00",
        "op 05-03 123456",
        "2024-03-12",
        "in 2023 en 2024",
        "om 10.30 uur",
        "€ 1.250,00",
        "06",
        "paalnr 0412",
        "ik heb 4 euro",
        "BSN 012345678",
        "NL91 ABNA 0417 1643 00",
        "NL91ABNA0417164300",
        "kenmerk 1234567890",
        "+5 punten",
        "2+2",
        "bel 0800",
    ] {
        assert_eq!(f(text).phones, 0, "{text}");
    }
}

#[test]
fn finds_amounts_of_money() {
    let cases = [
        ("€ 12,50", 1),
        ("€12,50", 1),
        ("€12.50", 1),
        ("12,50€", 1),
        ("12,50 €", 1),
        ("12 euro", 1),
        ("12 EURO", 1),
        ("5 euro's", 1),
        ("EUR 100", 1),
        ("100 EUR", 1),
        ("EUR100", 1),
        ("100euro", 1),
        ("100,-", 1),
        ("100,--", 1),
        ("kost €1.250.000", 1),
        ("$40", 1),
        ("£5", 1),
        ("€12,50/maand", 1),
        ("(€ 45,-)", 1),
        ("€ 12,50 euro", 1),
        ("€5-€10", 2),
        ("boete van €95 en daarna nog 30 euro", 2),
        ("Verdien €500 per dag", 1),
        ("ik heb nog 4 euro en de kinderen moeten eten", 1),
    ];
    for (text, want) in cases {
        assert_eq!(f(text).amounts, want, "{text}");
    }
}

#[test]
fn numbers_that_are_not_amounts() {
    for text in [
        "12 containers",
        "de euro is sterk",
        "euro 2024 was leuk",
        "in 2024",
        "06-12345678",
        "90% korting",
        "$HOME",
        "€",
        "Kerkstraat 12, 1234 AB",
        "dollar 5 cent omhoog",
    ] {
        assert_eq!(f(text).amounts, 0, "{text}");
    }
    // The currency after a counted amount does not start another one.
    assert_eq!(f("€ 5 euro 30 minuten").amounts, 1);
}

#[test]
fn counts_emoji_and_their_tone() {
    let x = f("Super geholpen 😀😊🙂😍👍🙏❤️👏🎉😄💪");
    assert_eq!((x.emoji, x.positive_emoji, x.negative_emoji), (11, 11, 0));
    let x = f("weer niet geleegd 😡🤬😠😤👎💩😢😭😞😒");
    assert_eq!((x.emoji, x.positive_emoji, x.negative_emoji), (10, 0, 10));
    let x = f("👋 🍕 🚗 😂");
    assert_eq!((x.emoji, x.positive_emoji, x.negative_emoji), (4, 0, 0));
    // The upside-down face and the clown are irony: "bedankt gemeente 🙃" is no thanks.
    let x = f("alweer een boete, bedankt gemeente 🙃🤡");
    assert_eq!((x.emoji, x.positive_emoji, x.negative_emoji), (2, 0, 2));
    // A gun and SOS are no neutral decoration; the knife and the bomb are praise as often.
    let x = f("Hallo 🔫🆘, the parade was killer 🔪, the bomb 💣");
    assert_eq!((x.emoji, x.negative_emoji), (4, 2));
    assert_eq!(f("geen emoji :-)").emoji, 0);
}

#[test]
fn emoji_sequences_count_once() {
    // Skin tones.
    let x = f("👍🏽");
    assert_eq!((x.emoji, x.positive_emoji), (1, 1));
    assert_eq!(f("👍🏻👍🏿").emoji, 2);
    // ZWJ sequences: facepalm with gender, a family, a heart on fire.
    let x = f("🤦‍♂️");
    assert_eq!((x.emoji, x.negative_emoji), (1, 1));
    assert_eq!(f("🤦🏼‍♀️").emoji, 1);
    assert_eq!(f("👨‍👩‍👧‍👦").emoji, 1);
    assert_eq!(f("❤️‍🔥").emoji, 1);
    // Flags: two regional indicators each; subdivision flags carry tags.
    assert_eq!(f("🇳🇱🇧🇪").emoji, 2);
    assert_eq!(f("🏴󠁧󠁢󠁳󠁣󠁴󠁿").emoji, 1);
    // Hearts with and without the emoji variation selector.
    assert_eq!(f("❤️❤️❤️").emoji, 3);
    assert_eq!(f("❤❤").positive_emoji, 2);
    // Keycaps and symbols that need U+FE0F.
    assert_eq!(f("1️⃣ #️⃣").emoji, 2);
    assert_eq!(f("©️ ‼️").emoji, 2);
    assert_eq!(f("© 2024").emoji, 0);
}

#[test]
fn zero_width_joiner_in_words_is_not_an_emoji() {
    // Persian uses ZWNJ/ZWJ inside words.
    let x = f("می\u{200D}خواهم");
    assert_eq!((x.emoji, x.words), (0, 1));
}

#[test]
fn finds_capitals() {
    let x = f("IK RUIK OVERAL GAS IN HET TRAPPENHUIS");
    assert_eq!(x.caps_words, 5);
    assert!(x.all_caps);
    let x = f("HOUD JE BEK EN DOE JE WERK");
    assert!(x.all_caps);
    assert_eq!(x.caps_words, 4);
    let x = f("De melding heb ik in januari gedaan. Er is NIETS gebeurd.");
    assert_eq!(x.caps_words, 1);
    assert!(!x.all_caps);
    // Abbreviations are capitals too; the share of capitals tells them from shouting.
    let x = f("Waar vind ik de WOZ-beschikking?");
    assert_eq!(x.caps_words, 1);
    assert!(!x.all_caps);
    // Too short to call shouting, and letters only.
    assert!(!f("OK!!").all_caps);
    assert!(!f("HELP 112").all_caps);
    assert!(f("HELP BRAND!").all_caps);
    assert!(f("RIJBEWIJS KWIJT wat nu").all_caps);
    assert!(!f("Rijbewijs KWIJT wat moet ik nu doen").all_caps);
    assert_eq!(f("F*** YOU GEMEENTE").caps_words, 2);
    assert_eq!(f("DigiD werkt niet").caps_words, 0);
    // Scripts without case are never capitals.
    assert!(!f("متى يتم جمع القمامة في حينا").all_caps);
    // Letters of a link do not dilute a shout.
    assert!(f("HELP ER IS NIKS GEDAAN https://www.gemeente.nl/melding/status").all_caps);
}

#[test]
fn a_realistic_spam_message() {
    let x = f(
        "💰💰 Verdien €500 per dag met crypto trading, klik hier www.snelrijk-nu.biz 💰💰 \
         Bel NU +31 6 1234 5678!!!",
    );
    assert_eq!(x.urls, 1);
    assert_eq!(x.amounts, 1);
    assert_eq!(x.phones, 1);
    assert_eq!(x.emoji, 4);
    assert_eq!(x.exclamation_marks, 3);
    assert_eq!(x.caps_words, 0);
    assert!(!x.all_caps);
}

#[test]
fn a_realistic_angry_message() {
    let x = f(
        "3e keer dat de container NIET is geleegd 😡😡 ik betaal €300 afvalstoffenheffing \
         per jaar!!! Bel me: 06-12345678. Kenmerk 12-03-2024, Kerkstraat 112, 1234 AB",
    );
    assert_eq!(x.phones, 1);
    assert_eq!(x.amounts, 1);
    assert_eq!(x.negative_emoji, 2);
    assert_eq!(x.caps_words, 1);
    assert_eq!(x.urls, 0);
    assert_eq!(x.emails, 0);
    assert!(!x.all_caps);
}

#[test]
fn a_realistic_question_with_contact_details() {
    let x = f(
        "Goedemiddag, ik heb een aanslag van € 1.234,56 gekregen (zie bijlage). Kunt u mij \
         terugbellen op 020 123 4567 of mailen naar p.jansen@ziggo.nl? Zie ook \
         gemeente.nl/bezwaar. Groet, Piet 🙂",
    );
    assert_eq!(
        x,
        TextFeatures {
            chars: x.chars,
            words: x.words,
            urls: 1,
            emails: 1,
            phones: 1,
            amounts: 1,
            emoji: 1,
            positive_emoji: 1,
            negative_emoji: 0,
            question_marks: 1,
            exclamation_marks: 0,
            caps_words: 0,
            all_caps: false,
        }
    );
}

#[test]
fn arbitrary_bytes_do_not_panic() {
    // Slicing happens on char boundaries only; multi-byte text around every feature.
    for text in [
        "€",
        "€€€",
        "€ €",
        "€1€",
        "+",
        "+ +",
        "++31",
        "@",
        "@@",
        "a@",
        "@b.nl",
        "://",
        "x://",
        "www.",
        ".",
        "..nl",
        "-.nl",
        "ü.nl",
        "\u{200D}",
        "\u{FE0F}",
        "\u{1F3FB}",
        "\u{20E3}",
        "🇳",
        "mailto:",
        "MAILTÖ:x",
        "0,-",
        ",-",
        "1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0",
        "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    ] {
        let _ = extract(text);
    }
}
