//! The JSON Lines channel: one message per line, as exported from another tool or recorded by
//! webcare itself. Only `text` is required; `id`, `channel`, `conversation`, `author` and
//! `received_at` are used when present and unknown fields are ignored, so exports from other
//! systems can be fed in as they are. A bad line is reported with its number and skipped; it
//! never stops the batch. A line longer than [`MAX_LINE`] is skipped without being held in
//! memory (so `/dev/zero` as input cannot exhaust it); after [`MAX_SKIP`] bytes without a line
//! end the input is given up. A UTF-8 byte-order mark before the first line is accepted, and
//! an empty `text` is refused with its line number.

use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use webcare_engine::{ChannelKind, Inbound};

#[derive(Debug, Deserialize)]
struct Line {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    conversation: Option<String>,
    #[serde(default)]
    author: Option<String>,
    text: String,
    #[serde(default)]
    received_at: Option<String>,
}

/// The longest line read as a message: far above the largest message any channel takes.
pub const MAX_LINE: usize = 1024 * 1024;
/// The most bytes skipped looking for the end of one too-long line before the input is given
/// up as not JSON Lines.
pub const MAX_SKIP: usize = 64 * 1024 * 1024;

/// Why one line could not be read as a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("line {line}: not valid UTF-8 (byte {byte}); save the file as UTF-8")]
    InvalidUtf8 { line: usize, byte: usize },
    #[error("line {line}: not a JSON message: {reason}")]
    Json { line: usize, reason: String },
    #[error("line {line}: {reason}")]
    Field { line: usize, reason: String },
    #[error("line {line}: cannot read input: {reason}")]
    Io { line: usize, reason: String },
    #[error("line {line}: longer than {MAX_LINE} bytes; skipped")]
    TooLong { line: usize },
    #[error(
        "line {line}: no line end within {MAX_SKIP} bytes; this is not a JSON Lines file, the rest is not read"
    )]
    NoLineEnd { line: usize },
}

/// Parses one line. `now` is used when the line has no `received_at`.
pub fn parse_line(bytes: &[u8], line: usize, now: DateTime<Utc>) -> Result<Inbound, LineError> {
    let text = std::str::from_utf8(bytes).map_err(|e| LineError::InvalidUtf8 {
        line,
        byte: e.valid_up_to() + 1,
    })?;
    let parsed: Line = serde_json::from_str(text).map_err(|e| LineError::Json {
        line,
        reason: e.to_string(),
    })?;
    if parsed.text.trim().is_empty() {
        return Err(LineError::Field {
            line,
            reason: "`text` is empty".into(),
        });
    }
    let channel = match parsed.channel.as_deref() {
        None => ChannelKind::Http,
        Some(name) => name
            .parse()
            .map_err(
                |e: webcare_engine::message::UnknownChannelError| LineError::Field {
                    line,
                    reason: e.to_string(),
                },
            )?,
    };
    let received_at = match parsed.received_at.as_deref() {
        None => now,
        Some(stamp) => DateTime::parse_from_rfc3339(stamp)
            .map_err(|_| LineError::Field {
                line,
                reason: format!(
                    "`received_at` `{stamp}` is not an RFC 3339 time like `2026-11-23T10:00:00+01:00`"
                ),
            })?
            .with_timezone(&Utc),
    };
    let id = match parsed.id {
        None | Some(serde_json::Value::Null) => format!("line-{line}"),
        Some(serde_json::Value::String(s)) => s,
        Some(other) => other.to_string(),
    };
    let mut message = Inbound::from_text(id, channel, parsed.text, received_at);
    if let Some(conversation) = parsed.conversation {
        message.conversation = conversation;
    }
    if let Some(author) = parsed.author {
        message.author = author;
    }
    Ok(message)
}

/// Reads messages line by line, numbering lines from 1 and skipping blank ones.
pub struct JsonlReader<R> {
    input: R,
    line: usize,
    buffer: Vec<u8>,
    now: DateTime<Utc>,
    /// Set after a line without an end: nothing more is read.
    given_up: bool,
}

impl<R: BufRead> JsonlReader<R> {
    pub fn new(input: R, now: DateTime<Utc>) -> Self {
        JsonlReader {
            input,
            line: 0,
            buffer: Vec::new(),
            now,
            given_up: false,
        }
    }

    /// Consumes the rest of a too-long line (up to [`MAX_SKIP`] bytes); whether its end came.
    fn skip_line(&mut self) -> std::io::Result<bool> {
        let mut skipped = 0usize;
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                return Ok(true);
            }
            if let Some(end) = chunk.iter().position(|b| *b == b'\n') {
                self.input.consume(end + 1);
                return Ok(true);
            }
            let len = chunk.len();
            self.input.consume(len);
            skipped += len;
            if skipped > MAX_SKIP {
                return Ok(false);
            }
        }
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = Result<Inbound, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.given_up {
                return None;
            }
            self.buffer.clear();
            self.line += 1;
            // At most one byte more than a line may have, so a line without an end cannot
            // grow the buffer without bound.
            let mut limited = std::io::Read::take(&mut self.input, MAX_LINE as u64 + 1);
            match limited.read_until(b'\n', &mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(LineError::Io {
                        line: self.line,
                        reason: e.to_string(),
                    }));
                }
            }
            if self.buffer.len() > MAX_LINE && self.buffer.last() != Some(&b'\n') {
                let line = self.line;
                return Some(match self.skip_line() {
                    Ok(true) => Err(LineError::TooLong { line }),
                    Ok(false) => {
                        self.given_up = true;
                        Err(LineError::NoLineEnd { line })
                    }
                    Err(e) => Err(LineError::Io {
                        line,
                        reason: e.to_string(),
                    }),
                });
            }
            // A byte-order mark (Windows editors write one) is not part of the first line.
            let mut bytes = &self.buffer[..];
            if self.line == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            let trimmed = bytes.trim_ascii();
            if trimmed.is_empty() {
                continue;
            }
            return Some(parse_line(trimmed, self.line, self.now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        /// Whatever bytes a file holds, the reader ends, and every line it gives up on is an
        /// error naming a line that exists.
        #[test]
        fn any_bytes_give_messages_or_errors_with_their_line(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)
        ) {
            let lines = input.split(|b| *b == b'\n').count();
            for item in read(&input) {
                if let Err(error) = item {
                    let text = error.to_string();
                    let line: usize = text
                        .strip_prefix("line ")
                        .and_then(|rest| rest.split(':').next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    proptest::prop_assert!((1..=lines).contains(&line), "{}", text);
                }
            }
        }
    }

    fn read(input: &[u8]) -> Vec<Result<Inbound, LineError>> {
        JsonlReader::new(input, DateTime::<Utc>::UNIX_EPOCH).collect()
    }

    #[test]
    fn only_text_is_required_and_unknown_fields_are_ignored() {
        let out = read(b"{\"text\":\"hallo\",\"likes\":3}\n\n{\"id\":7,\"channel\":\"telegram\",\"text\":\"x\",\"received_at\":\"2026-11-23T10:00:00+01:00\"}\n");
        assert_eq!(out.len(), 2);
        let first = out[0].as_ref().expect("first line parses");
        assert_eq!(
            (first.id.as_str(), first.channel),
            ("line-1", ChannelKind::Http)
        );
        let second = out[1].as_ref().expect("third line parses");
        assert_eq!(second.id, "7");
        assert_eq!(second.received_at.to_rfc3339(), "2026-11-23T09:00:00+00:00");
    }

    #[test]
    fn a_bom_is_accepted_empty_text_refused_and_long_lines_skipped() {
        let mut input =
            b"\xEF\xBB\xBF{\"text\":\"eerste\"}\n{\"text\":\"  \"}\n{\"text\":\"".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        input.extend_from_slice(b"\"}\n{\"text\":\"laatste\"}\n");
        let out = read(&input);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].as_ref().map(|m| m.text.as_str()), Ok("eerste"));
        let empty = out[1]
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert_eq!(empty, "line 2: `text` is empty");
        assert_eq!(out[2], Err(LineError::TooLong { line: 3 }));
        assert_eq!(out[3].as_ref().map(|m| m.text.as_str()), Ok("laatste"));
    }

    #[test]
    fn endless_input_without_line_ends_is_given_up_in_bounded_memory() {
        let zeros = std::io::BufReader::new(std::io::repeat(0));
        let out: Vec<_> = JsonlReader::new(zeros, DateTime::<Utc>::UNIX_EPOCH).collect();
        assert_eq!(out, [Err(LineError::NoLineEnd { line: 1 })]);
    }

    #[test]
    fn bad_lines_name_their_number_and_do_not_stop_the_batch() {
        let out = read(b"{\"text\":\"ok\"}\nnot json\n{\"id\":\"x\"}\n{\"text\":\"caf\xff\"}\n{\"text\":\"x\",\"channel\":\"fax\"}\n{\"text\":\"last\"}");
        let errors: Vec<String> = out
            .iter()
            .filter_map(|r| r.as_ref().err().map(ToString::to_string))
            .collect();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("line 2: not a JSON message"));
        assert!(errors[1].starts_with("line 3:") && errors[1].contains("text"));
        assert!(errors[2].starts_with("line 4: not valid UTF-8"));
        assert!(errors[3].starts_with("line 5:") && errors[3].contains("`fax`"));
        assert_eq!(
            out.last()
                .and_then(|r| r.as_ref().ok())
                .map(|m| m.text.as_str()),
            Some("last")
        );
    }
}
