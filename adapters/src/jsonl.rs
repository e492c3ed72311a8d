//! The JSON Lines channel: one message per line, as exported from another tool or recorded by
//! webcare itself. Only `text` is required; `id`, `channel`, `conversation`, `author` and
//! `received_at` are used when present and unknown fields are ignored, so exports from other
//! systems can be fed in as they are. A bad line is reported with its number and skipped; it
//! never stops the batch.

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
}

impl<R: BufRead> JsonlReader<R> {
    pub fn new(input: R, now: DateTime<Utc>) -> Self {
        JsonlReader {
            input,
            line: 0,
            buffer: Vec::new(),
            now,
        }
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = Result<Inbound, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buffer.clear();
            self.line += 1;
            match self.input.read_until(b'\n', &mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(LineError::Io {
                        line: self.line,
                        reason: e.to_string(),
                    }));
                }
            }
            let trimmed = self.buffer.trim_ascii();
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
