//! Countable facts about a message's raw text that rule scripts can read: how many links,
//! e-mail addresses, phone numbers, amounts of money and emoji it holds, and whether it is
//! shouted. Spam is links; a citizen who leaves a phone number wants to be called back; an
//! amount means a bill or a fine; three angry emoji or a message in capitals is a complaint
//! in the making, whatever its words say.
//!
//! The facts come from the raw text, not the normalised one, because normalising throws
//! away exactly what they are made of (capitals, punctuation, `@`, `€`, emoji). Every message
//! pays for this, so it is one hand-written scan: the characters are walked once, each
//! whitespace-separated token is classified when it ends (a few byte comparisons), and
//! numbers that span tokens (`+31 6 1234 5678`, `€ 12,50`, `12 euro`) are joined by two small
//! state machines. No regex, no allocation.
//!
//! What is deliberately *not* counted, because rules would misfire on it: `112` and other
//! 3–4 digit numbers (emergency and short numbers, house numbers), postcodes, dates, times,
//! years, amounts, bank account numbers written in groups (`NL91 ABNA 0417 1643 00`), and
//! sentences with a missing space after the full stop (`gedaan.nu`), which look like web
//! addresses but are not.

mod emoji;
mod links;
mod money;
mod phones;

use emoji::EmojiState;
use links::{is_email, is_url};
use money::{MoneyState, could_be_currency_word};
use phones::PhoneRun;

/// Facts about one message's text. All counts are occurrences, so `???` is three question
/// marks and `👍👍` two emoji.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TextFeatures {
    /// Unicode scalar values (Rust `char`s); an emoji with a skin tone counts as two.
    pub chars: u32,
    /// Whitespace-separated tokens with at least one letter or digit (emoji are separators).
    pub words: u32,
    /// Web addresses: `http(s)://…`, `www.…`, and bare domains such as `gemeente.nl/afval`
    /// or `bit.ly/x` (a bare domain without a path needs a common top-level domain).
    pub urls: u32,
    pub emails: u32,
    /// Dutch (`06-12345678`, `020 123 4567`, `0800-0113`, `14 020`) and international
    /// (`+31 6 1234 5678`, `0032 …`) telephone numbers.
    pub phones: u32,
    /// Amounts of money: `€ 12,50`, `€12.50`, `12 euro`, `EUR 100`, `100,-`, `$40`, `£5`.
    pub amounts: u32,
    /// Emoji; a skin tone, a flag's two letters or a ZWJ sequence (`🤦‍♂️`) count once.
    pub emoji: u32,
    pub positive_emoji: u32,
    pub negative_emoji: u32,
    pub question_marks: u32,
    pub exclamation_marks: u32,
    /// Words of three or more letters, all capitals (`NIETS`, `HELP`, but also `WOZ`).
    pub caps_words: u32,
    /// At least 8 letters and 70% or more of them capitals (letters of links and e-mail
    /// addresses left out): the message is shouted.
    pub all_caps: bool,
}

/// Computes the [`TextFeatures`] of `text`.
pub fn extract(text: &str) -> TextFeatures {
    let bytes = text.as_bytes();
    let mut scan = Scan::default();
    // The token being read: where it starts, and what its characters were so far. Locals
    // rather than fields, so that they stay in registers.
    let mut start = None;
    let mut tok = Token::default();
    let mut chars = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_lowercase() {
            // Most of a message: a run of lowercase letters needs only its length.
            let run = bytes[i..]
                .iter()
                .position(|b| !b.is_ascii_lowercase())
                .unwrap_or(bytes.len() - i);
            start.get_or_insert(i);
            tok.classes |= LOWER;
            tok.letters += u32::try_from(run).unwrap_or(u32::MAX);
            chars += run;
            i += run;
            continue;
        }
        let (class, width) = if b.is_ascii() {
            (ASCII[usize::from(b)], 1)
        } else {
            // `i` is on a character boundary: it only ever moves by whole characters.
            let c = text[i..].chars().next().unwrap_or_default();
            (scan.unicode_class(text, i, c), c.len_utf8())
        };
        if class & SPACE != 0 {
            if let Some(s) = start.take() {
                let word = &text[s..i];
                let tok = std::mem::take(&mut tok);
                // Most tokens are lowercase words in the middle of a sentence, with no number
                // before them to complete: they only count, and need no classifier.
                if tok.classes & !LETTER == 0
                    && tok.upper < 3
                    && scan.idle()
                    && !could_be_currency_word(word)
                {
                    scan.features.words += 1;
                    scan.letters_total += tok.letters;
                    scan.upper_total += tok.upper;
                } else {
                    scan.token(word, tok);
                }
            }
        } else {
            start.get_or_insert(i);
            tok.classes |= class;
            tok.letters += u32::from(class & LETTER != 0);
            tok.upper += u32::from(class == UPPER);
            match b {
                b'?' => scan.features.question_marks += 1,
                b'!' => scan.features.exclamation_marks += 1,
                _ => {}
            }
        }
        chars += 1;
        i += width;
    }
    if let Some(s) = start {
        scan.token(&text[s..], tok);
    }
    scan.features.chars = u32::try_from(chars).unwrap_or(u32::MAX);
    scan.finish()
}

// What a character is, as bits, so that a token knows after the scan which of the (costlier)
// classifiers can apply to it: no `@`, no e-mail address; no digit and no currency sign, no
// amount or phone number. Most words skip every classifier.
const SPACE: u16 = 1;
const UPPER: u16 = 1 << 1;
const LOWER: u16 = 1 << 2;
const DIGIT: u16 = 1 << 3;
/// A digit outside ASCII (Arabic-Indic and the like): part of a word, never of a number here.
const NUMERIC: u16 = 1 << 4;
const AT: u16 = 1 << 5;
const DOT: u16 = 1 << 6;
const CURRENCY: u16 = 1 << 7;
/// Anything else that is not a space: what a plain word lacks.
const PUNCTUATION: u16 = 1 << 8;
const LETTER: u16 = UPPER | LOWER;

const ASCII: [u16; 128] = ascii_classes();

const fn ascii_classes() -> [u16; 128] {
    let mut table = [0u16; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        table[b] = match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C => SPACE,
            b'A'..=b'Z' => UPPER,
            b'a'..=b'z' => LOWER,
            b'0'..=b'9' => DIGIT,
            b'@' => AT,
            b'.' => DOT,
            b'$' => CURRENCY,
            _ => PUNCTUATION,
        };
        b += 1;
    }
    table
}

#[derive(Debug, Default)]
struct Scan {
    features: TextFeatures,
    emoji: EmojiState,
    letters_total: u32,
    upper_total: u32,
    money: MoneyState,
    phones: PhoneRun,
}

impl Scan {
    fn unicode_class(&mut self, text: &str, i: usize, c: char) -> u16 {
        if self.emoji.char(text, i, c, &mut self.features) {
            // Emoji end a token like whitespace does: "top👍" is the word "top".
            SPACE
        } else if matches!(c, '€' | '£') {
            CURRENCY
        } else if c.is_whitespace() {
            SPACE
        } else if c.is_alphabetic() {
            if c.is_uppercase() { UPPER } else { LOWER }
        } else if c.is_numeric() {
            NUMERIC
        } else {
            PUNCTUATION
        }
    }

    /// No amount or phone number is waiting for the next token to complete it.
    fn idle(&self) -> bool {
        self.money == MoneyState::None && self.phones.len == 0 && self.phones.account_stage == 0
    }

    /// Classifies a finished token; its letters count only if it is not an address.
    fn token(&mut self, raw: &str, tok: Token) {
        if tok.classes & (LETTER | DIGIT | NUMERIC) != 0 {
            self.features.words += 1;
        }
        let t = trim(raw);
        if tok.classes & AT != 0 && is_email(t) {
            self.features.emails += 1;
            self.after_address();
            return;
        }
        if tok.classes & DOT != 0 && t.bytes().any(|b| b == b'.') && is_url(t) {
            self.features.urls += 1;
            self.after_address();
            return;
        }
        self.letters_total += tok.letters;
        self.upper_total += tok.upper;
        if tok.upper >= 3 {
            self.features.caps_words += caps_words(raw);
        }
        if tok.classes & (DIGIT | CURRENCY) != 0 || could_be_currency_word(t) {
            self.money.token(t, tok.classes, &mut self.features);
        } else {
            self.money = MoneyState::None;
        }
        if tok.classes & DIGIT != 0 || t == "-" || t == "/" {
            self.phones.token(t, &mut self.features);
        } else {
            self.phones.other(t, &mut self.features);
        }
    }

    /// Digits inside an address are neither a phone number nor an amount, and no number
    /// reaches across it.
    fn after_address(&mut self) {
        self.money = MoneyState::default();
        self.phones.other("", &mut self.features);
    }

    fn finish(mut self) -> TextFeatures {
        self.phones.flush(&mut self.features);
        self.features.all_caps =
            self.letters_total >= 8 && self.upper_total * 10 >= self.letters_total * 7;
        self.features
    }
}

/// Strips the punctuation that surrounds a token in prose: `(06-12345678)`, `gemeente.nl.`,
/// `"HELP"`, `“HELP!”`. A trailing `-` stays, because `100,-` is an amount.
fn trim(token: &str) -> &str {
    let t = trim_ascii_punctuation(token);
    let b = t.as_bytes();
    if b.first().is_some_and(|&c| c >= 0x80) || b.last().is_some_and(|&c| c >= 0x80) {
        let t = t
            .trim_start_matches(['¿', '¡', '“', '‘', '«'])
            .trim_end_matches(['”', '’', '»']);
        trim_ascii_punctuation(t)
    } else {
        t
    }
}

fn trim_ascii_punctuation(token: &str) -> &str {
    let b = token.as_bytes();
    let mut start = 0;
    let mut end = b.len();
    let is = |c: u8, role: u8| c.is_ascii() && TRIM[usize::from(c)] & role != 0;
    while start < end && is(b[start], OPENING) {
        start += 1;
    }
    while end > start && is(b[end - 1], CLOSING) {
        end -= 1;
    }
    // Only ASCII bytes were cut, so both ends are character boundaries.
    token.get(start..end).unwrap_or(token)
}

const OPENING: u8 = 1;
const CLOSING: u8 = 2;

/// Which ASCII punctuation may open or close a token.
const TRIM: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = match b as u8 {
            b'(' | b'[' | b'{' | b'<' => OPENING,
            b'"' | b'\'' | b'*' => OPENING | CLOSING,
            b'.' | b',' | b';' | b':' | b'!' | b'?' | b')' | b']' | b'}' | b'>' => CLOSING,
            _ => 0,
        };
        b += 1;
    }
    table
};

// ---------------------------------------------------------------------------------------------
// Letters and capitals

/// What the scan knows about the token it is in.
#[derive(Debug, Clone, Copy, Default)]
struct Token {
    /// The classes of all its characters, or-ed.
    classes: u16,
    letters: u32,
    upper: u32,
}

/// Runs of three or more capitals between non-letters ("WOZ-beschikking" has one). Only
/// called for tokens with three capitals or more, which few are.
fn caps_words(token: &str) -> u32 {
    let mut words = 0;
    let mut run = 0;
    let mut all_upper = true;
    for c in token.chars() {
        if c.is_alphabetic() {
            run += 1;
            all_upper &= c.is_uppercase();
        } else {
            words += u32::from(run >= 3 && all_upper);
            run = 0;
            all_upper = true;
        }
    }
    words + u32::from(run >= 3 && all_upper)
}

#[cfg(test)]
mod tests;
