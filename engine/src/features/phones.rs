//! Phone numbers in a message's raw text, joined across the groups people write them in
//! (`+31 6 1234 5678`), never a short number, a year or a bank account.

use super::*;

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
pub(super) struct PhoneRun {
    groups: [Group; MAX_GROUPS],
    pub(super) len: usize,
    /// The run follows "NL91 ABNA": a bank account number written in groups, not a phone.
    account: bool,
    /// How far an account number has been seen: 1 after "NL91", 2 after its bank code.
    pub(super) account_stage: u8,
}

enum PhoneToken {
    Digits(Group),
    /// "-" or "/" between groups: `06 - 12345678`.
    Joiner,
    Other,
}

impl PhoneRun {
    pub(super) fn token(&mut self, t: &str, f: &mut TextFeatures) {
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
    pub(super) fn other(&mut self, t: &str, f: &mut TextFeatures) {
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
    pub(super) fn flush(&mut self, f: &mut TextFeatures) {
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
