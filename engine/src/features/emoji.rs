//! Emoji in a message's raw text: sequences counted once (`👍🏽`, `🇳🇱`, `👨‍👩‍👧`), and whether
//! each says something positive or negative.

use super::*;

/// Where the scan is inside an emoji sequence, so that `👍🏽`, `🇳🇱` and `👨‍👩‍👧` count once.
#[derive(Debug, Default)]
pub(super) struct EmojiState {
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

pub(super) const ZWJ: char = '\u{200D}';
const VS16: char = '\u{FE0F}';
const VS15: char = '\u{FE0E}';
const KEYCAP: char = '\u{20E3}';

impl EmojiState {
    /// Counts the non-ASCII character `c` at byte `i` of `text` into `f`, and returns whether
    /// it is part of an emoji (and so no part of a word).
    pub(super) fn char(&mut self, text: &str, i: usize, c: char, f: &mut TextFeatures) -> bool {
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
        | '🙃' | '🤡'
        // A gun, a dagger and a call for help: "Goedemorgen 🔫🔫 gemeente" is no hello, "🆘🆘🆘"
        // no pocket message. Not the knife or the bomb: "the parade was killer 🎃🔪", "your
        // new website is the bomb 💣" are praise.
        | '🗡' | '🔫' | '🆘' => {
            Sentiment::Negative
        }
        _ => Sentiment::Neutral,
    }
}
