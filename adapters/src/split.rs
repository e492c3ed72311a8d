//! Platform length limits. Telegram takes at most 4096 characters per message and Discord
//! 2000; a longer reply must arrive whole, so it is split into several messages, on a paragraph,
//! line or word edge where one is near, never inside a character.
//!
//! Limits are counted in UTF-16 code units: Telegram measures text that way, and it is never
//! less than the number of characters, so a part that fits in UTF-16 fits on every platform.
//!
//! [`SplitSender`] sends the parts in order and remembers how many went out, so a retry after a
//! failure in the middle does not repeat the first parts. Every platform that splits needs the
//! same bookkeeping; only sending one part differs, and that is the closure it is given.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use crate::delivery::DeliveryError;

/// Sends a reply as parts of at most one platform's limit, resuming after the parts that went
/// out before a failure.
#[derive(Debug)]
pub struct SplitSender {
    max: usize,
    /// Parts of a split reply already sent, by outbox entry. Lost on restart, when a retry may
    /// repeat them.
    progress: Mutex<HashMap<u64, usize>>,
}

impl SplitSender {
    /// A sender for a platform that takes at most `max` UTF-16 code units per message.
    pub fn new(max: usize) -> Self {
        SplitSender {
            max,
            progress: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `text`, the reply of outbox entry `entry`, with `send(index, part)`, part by part,
    /// skipping those an earlier attempt sent. A temporary failure keeps the count for the
    /// retry; a permanent one (or success) forgets it, as no retry will come.
    pub async fn send<F, Fut>(
        &self,
        entry: u64,
        text: &str,
        mut send: F,
    ) -> Result<(), DeliveryError>
    where
        F: FnMut(usize, String) -> Fut,
        Fut: Future<Output = Result<(), DeliveryError>>,
    {
        let parts = split_text(text, self.max);
        if parts.is_empty() {
            return Err(DeliveryError::Permanent("the reply is empty".into()));
        }
        let done = self.sent_parts(entry);
        for (index, part) in parts.into_iter().enumerate().skip(done) {
            match send(index, part).await {
                Ok(()) => self.set_sent_parts(entry, Some(index + 1)),
                Err(error) => {
                    if matches!(error, DeliveryError::Permanent(_)) {
                        self.set_sent_parts(entry, None);
                    }
                    return Err(error);
                }
            }
        }
        self.set_sent_parts(entry, None);
        Ok(())
    }

    fn sent_parts(&self, entry: u64) -> usize {
        self.progress
            .lock()
            .map(|p| p.get(&entry).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn set_sent_parts(&self, entry: u64, parts: Option<usize>) {
        if let Ok(mut progress) = self.progress.lock() {
            match parts {
                Some(parts) => progress.insert(entry, parts),
                None => progress.remove(&entry),
            };
        }
    }
}

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

    #[tokio::test]
    async fn a_retry_resumes_after_the_parts_that_went_out() {
        let sender = SplitSender::new(10);
        let sent = std::sync::Mutex::new(Vec::new());
        let attempt = |fail_at: Option<(usize, DeliveryError)>| {
            let sent = &sent;
            sender.send(7, "een twee drie vier vijf zes", move |index, part| {
                let failure = fail_at.clone().filter(|(at, _)| *at == index);
                async move {
                    match failure {
                        Some((_, error)) => Err(error),
                        None => {
                            sent.lock().map(|mut s| s.push(part)).ok();
                            Ok(())
                        }
                    }
                }
            })
        };
        let temporary = DeliveryError::Temporary("503".into());
        assert_eq!(attempt(Some((1, temporary.clone()))).await, Err(temporary));
        assert_eq!(attempt(None).await, Ok(()));
        let parts = sent.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(
            parts,
            ["een twee", "drie vier", "vijf zes"],
            "no part twice"
        );

        // Done, or dead: the next reply under the same id starts from its first part.
        let permanent = DeliveryError::Permanent("blocked".into());
        assert_eq!(attempt(Some((2, permanent.clone()))).await, Err(permanent));
        sent.lock().map(|mut s| s.clear()).ok();
        assert_eq!(attempt(None).await, Ok(()));
        assert_eq!(sent.lock().map(|s| s.len()).unwrap_or_default(), 3);
        assert_eq!(
            sender.send(8, "  ", |_, _| async { Ok(()) }).await,
            Err(DeliveryError::Permanent("the reply is empty".into()))
        );
    }
}
