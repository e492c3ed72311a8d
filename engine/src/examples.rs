//! Labelled example messages, one JSON object per line: what the classifier learns from
//! (`rules/examples/*.jsonl`, part of the rulebook and its version) and what `webcare eval`
//! measures decisions against (a development set the rules were not written against).
//!
//! ```text
//! {"text": "mn rijbewjis is verlopen", "category": "question", "topic": "driving_licence", "lang": "nl"}
//! ```
//!
//! `text` and `category` are required; `topic` (the rulebook topic a question or report is
//! about) and `lang` (ISO 639-1) are optional. One reader serves both uses, so a line that
//! trains the classifier can be moved to an evaluation file and back without changes.

use serde::Deserialize;

use crate::decision::Category;
use crate::rulebook::error::{Location, RulebookError};
use crate::rulebook::source::SourceFile;

/// One labelled message.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub category: Category,
    /// The topic the message is about, when it is about one the rulebook knows.
    pub topic: Option<String>,
    /// ISO 639-1 code of the language it is written in.
    pub lang: Option<String>,
    /// Line in its file, from 1, for errors and for the list of misses.
    pub line: usize,
    /// The file, when several are evaluated together (`webcare eval --folds`) and a line
    /// number alone would not say where the message is.
    pub file: Option<std::sync::Arc<str>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExampleLine {
    text: String,
    category: String,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    lang: Option<String>,
}

/// Reads every line of `file`; blank lines are skipped. Every bad line is reported with its
/// position, not only the first, so one run of `webcare check` shows them all.
pub fn parse_examples(file: &SourceFile) -> Result<Vec<Example>, Vec<RulebookError>> {
    let mut examples = Vec::new();
    let mut errors = Vec::new();
    let mut offset = 0;
    for (i, raw) in file.text.split_inclusive('\n').enumerate() {
        let line_start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let at = |column_offset: usize| {
            Location::at_offset(file.path.clone(), &file.text, line_start + column_offset)
        };
        let parsed: ExampleLine = match serde_json::from_str(line) {
            Ok(parsed) => parsed,
            Err(e) => {
                // serde_json counts columns in bytes from 1 on this one-line input.
                let column = e.column().saturating_sub(1).min(line.len());
                let message = e.to_string();
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_owned();
                errors.push(RulebookError::invalid(
                    at(column),
                    format!("not a labelled example: {message}"),
                ));
                continue;
            }
        };
        if parsed.text.trim().is_empty() {
            errors.push(RulebookError::invalid(
                at(0),
                "the example's `text` is empty",
            ));
            continue;
        }
        let category = match parsed.category.parse::<Category>() {
            Ok(Category::Unknown) => {
                errors.push(RulebookError::invalid(
                    at(0),
                    "`unknown` is what the engine says when nothing matched; label the example with what it is",
                ));
                continue;
            }
            Ok(category) => category,
            Err(e) => {
                errors.push(RulebookError::invalid(at(0), e));
                continue;
            }
        };
        examples.push(Example {
            text: parsed.text,
            category,
            topic: parsed.topic.filter(|t| !t.is_empty()),
            lang: parsed.lang.filter(|l| !l.is_empty()),
            line: i + 1,
            file: None,
        });
    }
    if errors.is_empty() {
        Ok(examples)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile {
            path: "examples/train.jsonl".into(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn reads_labels_and_skips_blank_lines() {
        let examples = parse_examples(&file(
            "{\"text\": \"mn rijbewjis\", \"category\": \"question\", \"topic\": \"driving_licence\", \"lang\": \"nl\"}\n\n{\"text\": \"ik zie het niet meer zitten\", \"category\": \"distress\"}\n",
        ))
        .expect("valid");
        assert_eq!(examples.len(), 2);
        assert_eq!(examples[0].topic.as_deref(), Some("driving_licence"));
        assert_eq!(examples[1].category, Category::Distress);
        assert_eq!(examples[1].line, 3);
    }

    #[test]
    fn every_bad_line_is_reported_with_its_position() {
        let errors = parse_examples(&file(
            "{\"text\": \"a\", \"category\": \"question\"}\n{\"text\": \"b\", \"category\": \"weather\"}\n{\"text\": \"c\" \"category\": \"spam\"}\n{\"text\": \"d\", \"category\": \"spam\", \"label\": 1}\n",
        ))
        .expect_err("three bad lines");
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert!(
            shown[0].starts_with("examples/train.jsonl:2:1: unknown category `weather`"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("examples/train.jsonl:3:14: not a labelled example"),
            "{shown:?}"
        );
        assert!(
            shown[2].contains(":4:") && shown[2].contains("unknown field `label`"),
            "{shown:?}"
        );
    }
}
