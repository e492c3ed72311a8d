//! Rulebook errors that point at the exact place to fix: `file:line:column: what is wrong`.
//! A governance lead reads these, not a developer, so they name the file they edited and the
//! value they typed, never a Rust type.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// A place in a rulebook file; lines and columns count from 1, columns in characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of byte offset `offset` in `text`.
    pub fn at_offset(file: impl Into<PathBuf>, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            file: file.into(),
            line,
            column,
        }
    }

    pub fn at_span(file: impl Into<PathBuf>, text: &str, span: Range<usize>) -> Self {
        Location::at_offset(file, text, span.start)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One thing wrong with a rulebook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulebookError {
    #[error("{}: cannot read: {reason}", file.display())]
    Unreadable { file: PathBuf, reason: String },
    #[error("{at}: {message}")]
    Invalid { at: Location, message: String },
}

impl RulebookError {
    /// Orders errors as a reader scans the files: by file, then line, then column.
    pub fn sort_key(&self) -> (&std::path::Path, usize, usize) {
        match self {
            RulebookError::Unreadable { file, .. } => (file, 0, 0),
            RulebookError::Invalid { at, .. } => (&at.file, at.line, at.column),
        }
    }

    pub fn invalid(at: Location, message: impl Into<String>) -> Self {
        RulebookError::Invalid {
            at,
            message: message.into(),
        }
    }
}

/// Everything wrong with a rulebook, in file order, so one `check` shows all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulebookErrors(pub Vec<RulebookError>);

impl fmt::Display for RulebookErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RulebookErrors {}

impl From<RulebookError> for RulebookErrors {
    fn from(error: RulebookError) -> Self {
        RulebookErrors(vec![error])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_lines_and_character_columns() {
        let text = "a = 1\nbé = 2\n";
        let at = Location::at_offset("rules/x.toml", text, text.find('=').unwrap_or(0));
        assert_eq!(at.to_string(), "rules/x.toml:1:3");
        let second = text.rfind('=').unwrap_or(0);
        assert_eq!(Location::at_offset("x", text, second).to_string(), "x:2:4");
    }
}
