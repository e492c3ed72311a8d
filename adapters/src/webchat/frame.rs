//! The frames a visitor's widget sends, read into what the socket does with each. It is one
//! function with no socket and no store, so any text a client can send is known (and tested
//! with generated frames) to give a message to take in, a request for earlier lines, a note to
//! the visitor, or a close with a reason, never a panic.

use serde::Deserialize;

use super::{CLOSE_INVALID, valid_id};

/// Frames the widget sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum Incoming {
    Message {
        id: String,
        text: String,
    },
    /// The page of lines before the last `skip` ones.
    Earlier {
        skip: usize,
    },
}

/// What a text frame asks of the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Frame {
    /// A chat message to take in: the widget's id for it, and its text, trimmed.
    Message { id: String, text: String },
    /// The page of lines before the last `skip` the widget already shows.
    Earlier { skip: usize },
    /// Only white space: nothing to take in and nothing to say.
    Blank,
    /// Longer than `max_chars` characters: the visitor is told, the socket stays open.
    TooLong,
    /// Not a chat frame, or a bad message id: the socket closes with this code and reason.
    Close(u16, &'static str),
}

/// Reads one text frame; `max_chars` is the longest message taken in, in characters.
pub(super) fn read(text: &str, max_chars: usize) -> Frame {
    let (id, text) = match serde_json::from_str::<Incoming>(text) {
        Ok(Incoming::Message { id, text }) => (id, text),
        Ok(Incoming::Earlier { skip }) => return Frame::Earlier { skip },
        Err(_) => return Frame::Close(CLOSE_INVALID, "not a chat message"),
    };
    if !valid_id(&id, 1) {
        return Frame::Close(CLOSE_INVALID, "bad message id");
    }
    let text = text.trim();
    if text.is_empty() {
        return Frame::Blank;
    }
    if text.chars().count() > max_chars {
        return Frame::TooLong;
    }
    Frame::Message {
        id,
        text: text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MAX: usize = 50;

    /// Frames as clients send them: anything at all, JSON of any shape, and chat frames with
    /// hostile ids and texts (control characters, right-to-left marks, emoji, long runs).
    fn frames() -> impl Strategy<Value = String> {
        let id = prop_oneof![
            "[a-zA-Z0-9_-]{1,64}",
            any::<String>(),
            "[a-z]{65,80}",
            Just(String::new()),
        ];
        let text = prop_oneof![
            any::<String>(),
            "[ \\t\\n\\u{0}-\\u{1f}\\u{202e}\\u{200b}\\u{301}a-zé😀]{0,80}",
        ];
        prop_oneof![
            any::<String>(),
            (id, text).prop_map(|(id, text)| {
                serde_json::json!({"type": "message", "id": id, "text": text}).to_string()
            }),
            any::<i64>().prop_map(|skip| format!("{{\"type\":\"earlier\",\"skip\":{skip}}}")),
            "\\{\"type\":\"(message|earlier|hello|)\"(,\"[a-z]{1,5}\":(1|\"x\"|null|\\[\\]|\\{\\}))*\\}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Every frame gives an answer the socket can act on, and a message it takes in is
        /// always one the rest of the service can store: a valid id, trimmed text within
        /// the limit.
        #[test]
        fn any_frame_is_a_message_a_request_a_note_or_a_close(frame in frames()) {
            match read(&frame, MAX) {
                Frame::Message { id, text } => {
                    prop_assert!(valid_id(&id, 1), "{:?}", id);
                    prop_assert!(!text.is_empty() && text.trim() == text);
                    prop_assert!(text.chars().count() <= MAX);
                }
                Frame::Close(code, reason) => {
                    prop_assert_eq!(code, CLOSE_INVALID);
                    prop_assert!(!reason.is_empty());
                }
                Frame::Earlier { .. } | Frame::Blank | Frame::TooLong => {}
            }
        }
    }

    #[test]
    fn each_kind_of_frame_is_read_as_the_widget_means_it() {
        let read = |frame: &str| read(frame, MAX);
        assert_eq!(
            read(r#"{"type":"message","id":"m-1","text":"  hallo  "}"#),
            Frame::Message {
                id: "m-1".into(),
                text: "hallo".into()
            }
        );
        assert_eq!(
            read(r#"{"type":"earlier","skip":20}"#),
            Frame::Earlier { skip: 20 }
        );
        assert_eq!(
            read(r#"{"type":"message","id":"m-1","text":" \n "}"#),
            Frame::Blank
        );
        let long = format!(
            r#"{{"type":"message","id":"m-1","text":"{}"}}"#,
            "é".repeat(51)
        );
        assert_eq!(read(&long), Frame::TooLong);
        assert_eq!(
            read(r#"{"type":"message","id":"<b>","text":"x"}"#),
            Frame::Close(CLOSE_INVALID, "bad message id")
        );
        for bad in [
            "",
            "hallo",
            "{}",
            r#"{"type":"message","id":"m","text":"x","extra":1}"#,
        ] {
            assert_eq!(read(bad), Frame::Close(CLOSE_INVALID, "not a chat message"));
        }
    }
}
