//! Facts about the raw text for the rule scripts (interim: replaced by the full scanner).

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TextFeatures {
    pub chars: u32,
    pub words: u32,
    pub urls: u32,
    pub emails: u32,
    pub phones: u32,
    pub amounts: u32,
    pub emoji: u32,
    pub positive_emoji: u32,
    pub negative_emoji: u32,
    pub question_marks: u32,
    pub exclamation_marks: u32,
    pub caps_words: u32,
    pub all_caps: bool,
}

pub fn extract(text: &str) -> TextFeatures {
    TextFeatures {
        chars: text.chars().count() as u32,
        words: text
            .split_whitespace()
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .count() as u32,
        positive_emoji: text
            .chars()
            .filter(|c| matches!(c, '🙏' | '👍' | '😊' | '🙂' | '😀' | '❤' | '👏' | '🎉' | '😍' | '💪'))
            .count() as u32,
        question_marks: text.matches('?').count() as u32,
        exclamation_marks: text.matches('!').count() as u32,
        ..TextFeatures::default()
    }
}
