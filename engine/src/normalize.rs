//! Text normalisation, done once per message before any matching.
//!
//! Customers type "Paspoort", "PASPOORT", "paspóórt" and "pas-poort"; keywords are written once.
//! Both sides go through [`normalize_into`]: Unicode compatibility decomposition (NFKD, which
//! folds ligatures, full-width letters and the like as NFKC does), combining marks dropped (so
//! diacritics disappear), lowercased, and every run of characters that is not a letter or digit
//! collapsed into one ASCII space. The result has a useful property the matcher relies on: a word
//! edge is exactly the start or end of the text or an adjacent space byte, so word-edge checks are
//! a byte comparison and regexes never need Unicode `\b` (which is slow on accented text).

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Normalises `text` into `out` (cleared first), reusing its allocation.
pub fn normalize_into(text: &str, out: &mut String) {
    out.clear();
    out.reserve(text.len());
    let mut gap = false;
    if text.is_ascii() {
        // The common case; skips the Unicode tables entirely. For an ASCII character
        // `is_alphanumeric` is `is_ascii_alphanumeric`: one table says whether a byte is kept
        // and as what, and the bytes go into a plain byte vector (a `String` pushes a `char`),
        // the same text as `push` below at a third of the cost of doing it by `char`
        // (session 15).
        let mut bytes = std::mem::take(out).into_bytes();
        for &b in text.as_bytes() {
            let folded = ASCII_FOLD[usize::from(b)];
            if folded != 0 {
                if gap && !bytes.is_empty() {
                    bytes.push(b' ');
                }
                gap = false;
                bytes.push(folded);
            } else {
                gap = true;
            }
        }
        // Only ASCII bytes were pushed, so this never fails.
        *out = String::from_utf8(bytes).unwrap_or_default();
        return;
    }
    let mut push = |c: char, out: &mut String| {
        if c.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    };
    for c in text.nfkd().filter(|c| !is_combining_mark(*c)) {
        for lower in c.to_lowercase().filter(|c| !is_combining_mark(*c)) {
            push(lower, out);
        }
    }
}

/// Per ASCII byte: its lowercase when it is a letter or digit, else 0 (a gap).
const ASCII_FOLD: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let byte = b as u8;
        if byte.is_ascii_alphanumeric() {
            table[b] = byte.to_ascii_lowercase();
        }
        b += 1;
    }
    table
};

/// Normalises into a new string; for rulebook loading and tests, not the per-message path.
pub fn normalize(text: &str) -> String {
    let mut out = String::new();
    normalize_into(text, &mut out);
    out
}

/// True when `start..end` of normalised `text` is a whole word or run of words.
#[inline]
pub fn starts_word(text: &[u8], start: usize) -> bool {
    start == 0 || text[start - 1] == b' '
}

#[inline]
pub fn ends_word(text: &[u8], end: usize) -> bool {
    end == text.len() || text[end] == b' '
}

/// The words of a normalised text as byte ranges, for a message read by several parts (the
/// matcher, the word lists, the classifier): split once, where each split it again a byte at a
/// time (session 15).
pub fn word_ranges(normalized: &str) -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(normalized.len() / 5 + 1);
    let mut start = 0usize;
    for (i, b) in normalized.bytes().enumerate() {
        if b == b' ' {
            if i > start {
                out.push((start as u32, i as u32));
            }
            start = i + 1;
        }
    }
    if normalized.len() > start {
        out.push((start as u32, normalized.len() as u32));
    }
    out
}

/// The words of `normalized` at `ranges` (from [`word_ranges`]).
pub fn words_at<'t>(
    normalized: &'t str,
    ranges: &'t [(u32, u32)],
) -> impl Iterator<Item = &'t str> + 't {
    ranges
        .iter()
        .map(move |&(start, end)| normalized.get(start as usize..end as usize).unwrap_or(""))
}

/// The words of a normalised text: what `split(' ')` without the empty pieces gives, by a
/// byte scan (the words are short, and a search for the next space cost more than the scan).
pub fn words(normalized: &str) -> Words<'_> {
    Words {
        text: normalized,
        at: 0,
    }
}

pub struct Words<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        while bytes.get(self.at) == Some(&b' ') {
            self.at += 1;
        }
        let start = self.at;
        while self.at < bytes.len() && bytes[self.at] != b' ' {
            self.at += 1;
        }
        // Both ends are at a space or an end of the text, so always on a character boundary.
        (self.at > start)
            .then(|| self.text.get(start..self.at))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_what_a_split_on_spaces_leaves() {
        for text in [
            "",
            " ",
            "een",
            "een twee",
            " een  twee drie ",
            "één  ünïcode x",
        ] {
            let split: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
            assert_eq!(words(text).collect::<Vec<_>>(), split, "{text:?}");
            let ranges = word_ranges(text);
            assert_eq!(
                words_at(text, &ranges).collect::<Vec<_>>(),
                split,
                "{text:?}"
            );
        }
    }

    #[test]
    fn folds_case_diacritics_and_punctuation() {
        assert_eq!(normalize("Paspóórt  kwijt!!"), "paspoort kwijt");
        assert_eq!(normalize("Café-terras, ÉÉN keer"), "cafe terras een keer");
        assert_eq!(normalize("pas-poort"), "pas poort");
        assert_eq!(normalize("  ...  "), "");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn ascii_text_normalises_as_the_unicode_path_does() {
        let ascii: String = (0u8..128).map(char::from).collect();
        let slow = |text: &str| {
            // The general path, which ASCII text never takes: no decomposition or combining
            // mark touches ASCII, so only the character tests differ.
            let mut out = String::new();
            let mut gap = false;
            for c in text.chars().flat_map(char::to_lowercase) {
                if c.is_alphanumeric() {
                    if gap && !out.is_empty() {
                        out.push(' ');
                    }
                    gap = false;
                    out.push(c);
                } else {
                    gap = true;
                }
            }
            out
        };
        let mut texts = vec![
            ascii.clone(),
            ascii.chars().rev().collect(),
            " Hallo, gemeente!! Wat  is 2+2? ".to_owned(),
            String::new(),
        ];
        // Random mixes of letters, digits, spaces and punctuation, runs of each long and short.
        let mut rng = 5u64;
        for _ in 0..5_000 {
            let mut text = String::new();
            for _ in 0..rng % 40 {
                rng = rng
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let pieces = b"aZ9 ,.!-\t\n\0Q_";
                text.push(char::from(pieces[(rng >> 33) as usize % pieces.len()]));
            }
            texts.push(text);
        }
        for text in texts {
            assert_eq!(normalize(&text), slow(&text), "{text:?}");
        }
    }

    #[test]
    fn compatibility_forms_fold_like_nfkc() {
        // Full-width letters, the "fi" ligature and a superscript digit.
        assert_eq!(normalize("ＷＯＺ ﬁets ²"), "woz fiets 2");
    }

    #[test]
    fn emoji_control_characters_and_rtl_text_survive() {
        assert_eq!(normalize("top 👍\u{0}\u{7}dank"), "top dank");
        assert_eq!(normalize("مرحبا بلدية"), "مرحبا بلدية");
        assert_eq!(normalize("שלום\u{200f} עולם"), "שלום עולם");
    }

    #[test]
    fn word_edges_are_spaces_or_text_ends() {
        let text = normalize("mijn paspoort, pas");
        let bytes = text.as_bytes();
        let pas_in_paspoort = text.find("pas").unwrap_or(usize::MAX);
        assert!(starts_word(bytes, pas_in_paspoort));
        assert!(!ends_word(bytes, pas_in_paspoort + 3));
        let last = text.rfind("pas").unwrap_or(usize::MAX);
        assert!(starts_word(bytes, last) && ends_word(bytes, last + 3));
    }
}
