//! Amounts of money in a message's raw text (`€ 12,50`, `12 euro`, `$40`), joined across
//! tokens by a small state machine.

use super::*;

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) enum MoneyState {
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
    pub(super) fn token(&mut self, t: &str, classes: u16, f: &mut TextFeatures) {
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
pub(super) fn could_be_currency_word(t: &str) -> bool {
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
