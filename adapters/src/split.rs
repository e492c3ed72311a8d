//! Platform length limits. Telegram takes at most 4096 characters per message and Discord
//! 2000; a longer reply must arrive whole, so it is split into several messages, on a paragraph,
//! line or word edge where one is near, never inside a character.
//!
//! Limits are counted in UTF-16 code units: Telegram measures text that way, and it is never
//! less than the number of characters, so a part that fits in UTF-16 fits on every platform.

/// Splits `text` into parts of at most `max` UTF-16 code units each (`max` of at least 2).
/// Whitespace at a split edge is dropped; text that fits is returned as one part, and text
/// that is only whitespace as none.
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let max = max.max(2);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let fits = prefix_fitting(rest, max);
        if fits == rest.len() {
            parts.push(rest.to_owned());
            break;
        }
        let (part, next) = match break_point(&rest[..fits]) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (&rest[..fits], &rest[fits..]),
        };
        parts.push(part.trim_end().to_owned());
        rest = next.trim_start();
    }
    parts
}

/// The byte length of the longest prefix of `text` within `max` UTF-16 code units.
fn prefix_fitting(text: &str, max: usize) -> usize {
    let mut units = 0;
    for (at, c) in text.char_indices() {
        units += c.len_utf16();
        if units > max {
            return at;
        }
    }
    text.len()
}

/// Where to cut `window` (the most that fits): after the last paragraph break, else the last
/// line break, else the last space, as long as that keeps at least half the window, so a
/// long word does not turn into a string of tiny messages.
fn break_point(window: &str) -> Option<usize> {
    let half = window.len() / 2;
    ["\n\n", "\n", " "]
        .iter()
        .filter_map(|edge| window.rfind(edge).filter(|at| *at >= half && *at > 0))
        .next()
        .or_else(|| {
            window
                .char_indices()
                .rev()
                .find(|(at, c)| c.is_whitespace() && *at >= half && *at > 0)
                .map(|(at, _)| at)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str) -> usize {
        s.encode_utf16().count()
    }

    #[test]
    fn short_text_is_one_part_and_blank_text_none() {
        assert_eq!(split_text("Hallo!", 10), vec!["Hallo!"]);
        assert!(split_text("  \n ", 10).is_empty());
    }

    #[test]
    fn splits_on_word_edges_within_the_limit() {
        let text = "de afvalkalender staat op onze website bij afval en recycling";
        let parts = split_text(text, 20);
        assert!(parts.len() > 1);
        for part in &parts {
            assert!(units(part) <= 20, "{part:?}");
            assert_eq!(part.trim(), part);
        }
        assert_eq!(parts.join(" "), text);
    }

    #[test]
    fn prefers_paragraph_breaks() {
        let text = "Eerste alinea met wat tekst.\n\nTweede alinea.";
        assert_eq!(
            split_text(text, 40),
            vec!["Eerste alinea met wat tekst.", "Tweede alinea."]
        );
    }

    #[test]
    fn long_words_are_cut_and_never_inside_a_character() {
        let text = format!("{}{}", "é".repeat(7), "😀".repeat(5));
        let parts = split_text(&text, 4);
        for part in &parts {
            assert!(units(part) <= 4, "{part:?}");
        }
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn telegram_sized_text_round_trips() {
        let word = "gemeente ";
        let text = word.repeat(1000);
        let parts = split_text(&text, 4096);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| units(p) <= 4096));
        assert_eq!(parts.join(" "), text.trim());
    }
}
