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

// ---------------------------------------------------------------------------------------------
// Emoji

/// Where the scan is inside an emoji sequence, so that `👍🏽`, `🇳🇱` and `👨‍👩‍👧` count once.
#[derive(Debug, Default)]
struct EmojiState {
    /// Where the last emoji character ended; a sequence continues only right there, so plain
    /// text needs no bookkeeping.
    end: usize,
    /// The current sequence has been counted; modifiers and joined emoji add nothing.
    counted: bool,
    /// A zero-width joiner followed a counted emoji: the next emoji belongs to it.
    joining: bool,
    /// One regional indicator was seen; the next completes the flag.
    flag_half: bool,
}

const ZWJ: char = '\u{200D}';
const VS16: char = '\u{FE0F}';
const VS15: char = '\u{FE0E}';
const KEYCAP: char = '\u{20E3}';

impl EmojiState {
    /// Counts the non-ASCII character `c` at byte `i` of `text` into `f`, and returns whether
    /// it is part of an emoji (and so no part of a word).
    fn char(&mut self, text: &str, i: usize, c: char, f: &mut TextFeatures) -> bool {
        if self.end != i {
            self.reset();
        }
        match c {
            ZWJ if self.counted => self.joining = true,
            VS16 => {
                // A symbol with default text presentation asked to be an emoji (`©️`, `‼️`).
                let symbol = text[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|p| !p.is_alphanumeric() && !p.is_whitespace());
                if !self.counted && symbol {
                    self.count(Sentiment::Neutral, f);
                }
            }
            VS15 => {}
            // A keycap (`1️⃣`), or a skin tone: part of the emoji before it, or on its own a swatch.
            KEYCAP | '\u{1F3FB}'..='\u{1F3FF}' => {
                if !self.counted {
                    self.count(Sentiment::Neutral, f);
                }
            }
            // Tag characters of subdivision flags (🏴 + tags).
            '\u{E0020}'..='\u{E007F}' => {}
            '\u{1F1E6}'..='\u{1F1FF}' => {
                if self.flag_half {
                    self.flag_half = false;
                } else {
                    self.count(Sentiment::Neutral, f);
                    self.flag_half = true;
                }
            }
            _ if is_pictograph(c) => {
                self.flag_half = false;
                if self.joining {
                    self.joining = false;
                } else {
                    self.count(sentiment(c), f);
                }
            }
            _ => return false,
        }
        self.end = i + c.len_utf8();
        true
    }

    fn count(&mut self, sentiment: Sentiment, f: &mut TextFeatures) {
        self.counted = true;
        f.emoji += 1;
        match sentiment {
            Sentiment::Positive => f.positive_emoji += 1,
            Sentiment::Negative => f.negative_emoji += 1,
            Sentiment::Neutral => {}
        }
    }

    fn reset(&mut self) {
        self.counted = false;
        self.joining = false;
        self.flag_half = false;
    }
}

/// Code points that are emoji by themselves: the pictographic blocks, plus the few older
/// symbols that are emoji by default. Symbols such as `©` or `‼` only count when followed by
/// U+FE0F (see [`EmojiState::char`]).
fn is_pictograph(c: char) -> bool {
    matches!(c,
        '\u{1F000}'..='\u{1FAFF}'
        | '\u{2600}'..='\u{27BF}'
        | '\u{231A}'..='\u{231B}'
        | '\u{23E9}'..='\u{23F3}'
        | '\u{23F8}'..='\u{23FA}'
        | '\u{2B05}'..='\u{2B07}'
        | '\u{2B1B}'..='\u{2B1C}'
        | '\u{2B50}'
        | '\u{2B55}'
        | '\u{3030}'
        | '\u{303D}'
        | '\u{3297}'
        | '\u{3299}')
}

#[derive(Debug, Clone, Copy)]
enum Sentiment {
    Positive,
    Negative,
    Neutral,
}

/// The tone of an emoji a webcare team reads without doubt. Laughing (😂) and surprise stay
/// neutral: "jullie zijn echt een grap 😂" is not praise.
fn sentiment(c: char) -> Sentiment {
    match c {
        '😀' | '😁' | '😃' | '😄' | '😆' | '😉' | '😊' | '😇' | '😍' | '🥰' | '😘' | '🙂'
        | '🤗' | '🥳' | '😎' | '👍' | '👏' | '🙏' | '🙌' | '👌' | '💪' | '🎉' | '🎊' | '🌟'
        | '💐' | '🌹' | '❤' | '♥' | '💕' | '💖' | '💗' | '💓' | '💞' | '💘' | '💝' | '💙'
        | '💚' | '💛' | '💜' | '🧡' | '🤍' | '🤎' | '🩷' | '☺' | '🤩' | '😻' | '✨' => {
            Sentiment::Positive
        }
        '😡' | '🤬' | '😠' | '😤' | '👎' | '💩' | '😢' | '😭' | '😞' | '😒' | '🙄' | '😩'
        | '😫' | '😖' | '😣' | '😟' | '😔' | '😕' | '🙁' | '☹' | '😾' | '🖕' | '🤮' | '🤢'
        | '💔' | '😱' | '😨' | '😰' | '😥' | '🤦' | '😑' | '🥵' | '🥶' | '😿'
        // Irony: "weer een boete, bedankt gemeente 🙃".
        | '🙃' | '🤡' => {
            Sentiment::Negative
        }
        _ => Sentiment::Neutral,
    }
}

// ---------------------------------------------------------------------------------------------
// Web and e-mail addresses

/// Top-level domains common enough in Dutch messages that a bare `name.tld` counts as a web
/// address without a path. Others (`.nu`, `.de`, `.me`, `.it`, ...) are also words, and
/// "doe het.nu" is a typo, not a link; with a path (`t.me/x`) they count.
const COMMON_TLDS: [&str; 27] = [
    "nl",
    "com",
    "org",
    "net",
    "eu",
    "be",
    "info",
    "biz",
    "io",
    "ly",
    "co",
    "uk",
    "fr",
    "es",
    "pl",
    "tr",
    "ua",
    "shop",
    "online",
    "site",
    "store",
    "xyz",
    "top",
    "app",
    "gov",
    "frl",
    "amsterdam",
];

fn is_url(t: &str) -> bool {
    let b = t.as_bytes();
    // Tokens are short: a plain byte loop beats the set-up of a substring search.
    if let Some(p) = b.iter().position(|&c| c == b':')
        && b[p + 1..].starts_with(b"//")
    {
        return p > 0 && b.len() > p + 3 && b[..p].iter().all(u8::is_ascii_alphabetic);
    }
    if b.len() > 4 && b[..4].eq_ignore_ascii_case(b"www.") {
        return true;
    }
    let host_end = b
        .iter()
        .position(|&c| matches!(c, b'/' | b'?' | b'#' | b':'))
        .unwrap_or(b.len());
    let (host, rest) = b.split_at(host_end);
    let Some(tld) = domain_tld(host) else {
        return false;
    };
    let has_path = rest.len() > 1 && rest[0] == b'/';
    has_path
        || COMMON_TLDS
            .iter()
            .any(|common| common.as_bytes().eq_ignore_ascii_case(tld))
}

fn is_email(t: &str) -> bool {
    let t = t
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("mailto:"))
        .map_or(t, |_| &t[7..]);
    let Some(at) = t.bytes().position(|b| b == b'@') else {
        return false;
    };
    let (local, domain) = (&t[..at], &t[at + 1..]);
    !local.is_empty()
        && !local.starts_with('.')
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-'))
        && domain_tld(domain.as_bytes()).is_some()
}

/// The top-level domain of `host` if it is shaped like a domain name: two or more labels of
/// ASCII letters, digits and inner hyphens, ending in 2–24 letters of one case (so that
/// "gedaan.Ik" is no domain).
fn domain_tld(host: &[u8]) -> Option<&[u8]> {
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in host.split(|&b| b == b'.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-')
            && label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return None;
        }
        labels += 1;
        last = label;
    }
    let one_case =
        last.iter().all(u8::is_ascii_lowercase) || last.iter().all(u8::is_ascii_uppercase);
    (labels >= 2 && (2..=24).contains(&last.len()) && one_case).then_some(last)
}

// ---------------------------------------------------------------------------------------------
// Amounts of money

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum MoneyState {
    #[default]
    None,
    /// The previous token was a currency on its own (`€`, `EUR`, `euro`).
    Currency,
    /// The previous token was a number not yet counted.
    Number,
    /// The previous token completed an amount; a currency after it (`€ 5 euro`) adds nothing.
    Counted,
}

enum MoneyToken {
    /// A currency sign or code on its own.
    Currency,
    /// A currency word on its own, which only follows its number.
    CurrencyWord,
    Number,
    /// This many amounts in the token itself (`€12,50`, `100,-`, `€5-€10`).
    Amounts(u32),
    Other,
}

impl MoneyState {
    fn token(&mut self, t: &str, classes: u16, f: &mut TextFeatures) {
        *self = match (money_token(t, classes), *self) {
            (MoneyToken::Currency | MoneyToken::CurrencyWord, MoneyState::Number)
            | (MoneyToken::Number, MoneyState::Currency) => {
                f.amounts += 1;
                MoneyState::Counted
            }
            (MoneyToken::Currency, MoneyState::Counted) | (MoneyToken::CurrencyWord, _) => {
                MoneyState::None
            }
            (MoneyToken::Currency, _) => MoneyState::Currency,
            (MoneyToken::Number, _) => MoneyState::Number,
            (MoneyToken::Amounts(n), _) => {
                f.amounts += n;
                MoneyState::Counted
            }
            (MoneyToken::Other, _) => MoneyState::None,
        };
    }
}

/// Whether `t` may be one of the currency codes or words below, by its first and last
/// letter; a cheap filter before [`currency`], since every word of a message passes here.
fn could_be_currency_word(t: &str) -> bool {
    let b = t.as_bytes();
    (3..=7).contains(&b.len())
        && matches!(b[0] | 0x20, b'e' | b'u' | b'g' | b'd')
        && matches!(b[b.len() - 1] | 0x20, b'r' | b'o' | b's' | b'd' | b'p')
}

/// Currency signs and codes (`€ 12`, `EUR 100`, `100 EUR`) and currency words, which only
/// follow their number: before a number they are usually something else ("euro 2024",
/// "dollar 5 cent omhoog").
fn currency(t: &str) -> Option<MoneyToken> {
    let b = t.as_bytes();
    if !(1..=7).contains(&b.len()) {
        return None;
    }
    let mut lower = [0u8; 7];
    for (l, c) in lower.iter_mut().zip(b) {
        *l = c.to_ascii_lowercase();
    }
    match &lower[..b.len()] {
        // `€` and `£` in UTF-8.
        b"$" | b"\xE2\x82\xAC" | b"\xC2\xA3" | b"eur" | b"usd" | b"gbp" => {
            Some(MoneyToken::Currency)
        }
        b"euro" | b"euros" | b"euro's" | b"dollar" | b"dollars" => Some(MoneyToken::CurrencyWord),
        _ => None,
    }
}

fn money_token(t: &str, classes: u16) -> MoneyToken {
    if let Some(currency) = currency(t) {
        return currency;
    }
    if classes & DIGIT == 0 {
        return MoneyToken::Other;
    }
    if classes & CURRENCY != 0 {
        // A currency sign with a digit on either side: "€12,50", "12,50€", "$40", "€5-€10".
        let mut signs = 0;
        let mut prev_digit = false;
        let mut chars = t.chars().peekable();
        while let Some(c) = chars.next() {
            if matches!(c, '€' | '$' | '£')
                && (prev_digit || chars.peek().is_some_and(char::is_ascii_digit))
            {
                signs += 1;
            }
            prev_digit = c.is_ascii_digit();
        }
        if signs > 0 {
            return MoneyToken::Amounts(signs);
        }
    }
    if classes & LETTER != 0 {
        // "EUR100", "100euro", "100eur".
        let b = t.as_bytes();
        let code_before =
            b.len() > 3 && b[..3].eq_ignore_ascii_case(b"eur") && b[3].is_ascii_digit();
        let code_after = ["euro", "eur"].iter().any(|code| {
            b.len() > code.len()
                && b[b.len() - code.len()..].eq_ignore_ascii_case(code.as_bytes())
                && b[b.len() - code.len() - 1].is_ascii_digit()
        });
        return if code_before || code_after {
            MoneyToken::Amounts(1)
        } else {
            MoneyToken::Other
        };
    }
    // "100,-" and "100,--": whole euros, the Dutch way.
    if let Some(number) = t.strip_suffix(",--").or_else(|| t.strip_suffix(",-")) {
        return if is_number(number) {
            MoneyToken::Amounts(1)
        } else {
            MoneyToken::Other
        };
    }
    if is_number(t) {
        MoneyToken::Number
    } else {
        MoneyToken::Other
    }
}

/// Digits with `.` or `,` between them: "12", "12,50", "1.250,00".
fn is_number(t: &str) -> bool {
    let b = t.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    first.is_ascii_digit()
        && last.is_ascii_digit()
        && b.iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b','))
        && !b
            .windows(2)
            .any(|w| !w[0].is_ascii_digit() && !w[1].is_ascii_digit())
}

// ---------------------------------------------------------------------------------------------
// Phone numbers

/// One token of digits in a run of such tokens: "+31", "6", "1234", "5678".
#[derive(Debug, Default, Clone, Copy)]
struct Group {
    digits: u8,
    plus: bool,
    /// The first (up to) four digits, for the prefixes that decide what the number is.
    lead: [u8; 4],
}

/// Enough for `+31 (0) 6 12 34 56 78`; a longer run is evaluated in parts.
const MAX_GROUPS: usize = 10;

/// Consecutive numeric tokens, which together may hold phone numbers.
#[derive(Debug, Default)]
struct PhoneRun {
    groups: [Group; MAX_GROUPS],
    len: usize,
    /// The run follows "NL91 ABNA": a bank account number written in groups, not a phone.
    account: bool,
    /// How far an account number has been seen: 1 after "NL91", 2 after its bank code.
    account_stage: u8,
}

enum PhoneToken {
    Digits(Group),
    /// "-" or "/" between groups: `06 - 12345678`.
    Joiner,
    Other,
}

impl PhoneRun {
    fn token(&mut self, t: &str, f: &mut TextFeatures) {
        match phone_token(t) {
            PhoneToken::Digits(group) => {
                if group.plus || self.len == MAX_GROUPS {
                    self.flush(f);
                }
                if self.len == 0 {
                    self.account = self.account_stage == 2;
                }
                self.account_stage = 0;
                self.groups[self.len] = group;
                self.len += 1;
            }
            PhoneToken::Joiner if self.len > 0 && self.len < MAX_GROUPS => {
                self.groups[self.len] = Group::default();
                self.len += 1;
            }
            PhoneToken::Joiner | PhoneToken::Other => self.other(t, f),
        }
    }

    /// A token that is no part of a phone number: it ends the run, and may start an account
    /// number.
    fn other(&mut self, t: &str, f: &mut TextFeatures) {
        if self.len > 0 {
            self.flush(f);
        }
        let b = t.as_bytes();
        self.account_stage = if b.len() == 4
            && b[..2].eq_ignore_ascii_case(b"nl")
            && b[2..].iter().all(u8::is_ascii_digit)
        {
            1
        } else if self.account_stage == 1 && b.len() == 4 && b.iter().all(u8::is_ascii_alphabetic) {
            2
        } else {
            0
        };
    }

    /// Counts the phone numbers in the run, longest first from each starting group, and empties it.
    fn flush(&mut self, f: &mut TextFeatures) {
        let groups = &self.groups[..self.len];
        let mut i = 0;
        while !self.account && i < groups.len() {
            let first = groups[i];
            let mut total = 0usize;
            let mut lead = [u8::MAX; 4];
            let mut lead_len = 0;
            let mut longest = None;
            for (j, group) in groups.iter().enumerate().skip(i) {
                if j > i && group.plus {
                    break;
                }
                total += usize::from(group.digits);
                if total > 15 {
                    break;
                }
                for &d in &group.lead[..usize::from(group.digits.min(4))] {
                    if lead_len < 4 {
                        lead[lead_len] = d;
                        lead_len += 1;
                    }
                }
                if first.digits > 0 && is_phone(first, total, lead) {
                    longest = Some(j);
                }
            }
            match longest {
                Some(j) => {
                    f.phones += 1;
                    i = j + 1;
                }
                None => i += 1,
            }
        }
        self.len = 0;
        self.account = false;
    }
}

/// Whether `total` digits starting with `lead`, the first group being `first`, make a phone
/// number. Dutch numbers have ten digits with the trunk 0; 0800/090x service numbers have 8 or
/// 11; a municipality's own number is 14 plus its area code (`14 020`); international numbers
/// start with + or 00 and have at most 15 digits (E.164).
fn is_phone(first: Group, total: usize, lead: [u8; 4]) -> bool {
    if first.plus {
        return (9..=15).contains(&total) && lead[0] != 0;
    }
    match lead {
        [1, 4, 0, _] => first.digits == 2 && (5..=6).contains(&total),
        [0, 0, d, _] => d != 0 && (11..=15).contains(&total),
        [0, 8, 0, 0] | [0, 9, 0, 0] | [0, 9, 0, 6] | [0, 9, 0, 9] => total == 8 || total == 11,
        [0, _, _, _] => total == 10,
        _ => false,
    }
}

fn phone_token(t: &str) -> PhoneToken {
    let (plus, rest) = match t.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let b = rest.as_bytes();
    if b.is_empty()
        || !b
            .iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'.' | b'/' | b'(' | b')'))
    {
        return PhoneToken::Other;
    }
    let mut group = Group {
        plus,
        ..Group::default()
    };
    // Sizes of the digit groups inside the token, to recognise dates and times.
    let mut sizes = [0u8; 4];
    let mut parts = 0;
    let mut in_part = false;
    for &c in b {
        if c.is_ascii_digit() {
            if usize::from(group.digits) < group.lead.len() {
                group.lead[usize::from(group.digits)] = c - b'0';
            }
            group.digits = group.digits.saturating_add(1);
            if !in_part {
                parts += 1;
                in_part = true;
            }
            if parts <= sizes.len() {
                sizes[parts - 1] = sizes[parts - 1].saturating_add(1);
            }
        } else {
            in_part = false;
        }
    }
    if group.digits == 0 {
        return if plus {
            PhoneToken::Other
        } else {
            PhoneToken::Joiner
        };
    }
    let day = |n: u8| (1..=2).contains(&n);
    let date_or_time = match (parts, sizes) {
        // 12-03, 10.30
        (2, [a, b, ..]) => day(a) && day(b),
        // 12-03-2024, 12/3/24, 2024-03-12
        (3, [a, b, c, _]) => {
            (day(a) && day(b) && (c == 2 || c == 4)) || (a == 4 && day(b) && day(c))
        }
        _ => false,
    };
    // "(0)6" is a trunk prefix in brackets, not the 0th of June.
    let bracketed = b.iter().any(|c| matches!(c, b'(' | b')'));
    if date_or_time && !plus && !bracketed {
        return PhoneToken::Other;
    }
    PhoneToken::Digits(group)
}

#[cfg(test)]
mod tests;
