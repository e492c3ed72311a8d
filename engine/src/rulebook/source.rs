//! Where a rulebook's text comes from: a directory on disk (`--rules DIR`) or the default
//! rulebook embedded in the binary, so `webcare` works on a machine with no files at all.
//! The version of a rulebook is a hash of exactly the text that affects decisions.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::config::RulebookConfig;
use super::error::{Location, RulebookError, RulebookErrors};

/// One file of a rulebook, with the path shown in errors.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

/// The path of a script or an examples file named in `rulebook.toml`, refused unless it is a
/// file of its kind inside the rulebook's folder or the folder that holds it (where the default
/// layout keeps `scripts/`). Anything else (`/proc/self/environ`, a key file) would be read and
/// quoted back in a parse error.
fn confined(
    dir: &Path,
    rel: &str,
    extension: &str,
    at: Location,
) -> Result<PathBuf, RulebookError> {
    let path = dir.join(rel);
    if path.extension().and_then(|e| e.to_str()) != Some(extension) {
        return Err(RulebookError::invalid(
            at,
            format!("`{rel}` must be a .{extension} file"),
        ));
    }
    // A file that does not exist is reported by the read that follows, with its path.
    let (Ok(file), Ok(folder)) = (path.canonicalize(), dir.canonicalize()) else {
        return Ok(path);
    };
    let root = folder.parent().unwrap_or(&folder);
    if file.starts_with(root) {
        Ok(path)
    } else {
        Err(RulebookError::invalid(
            at,
            format!(
                "`{rel}` is outside the rulebook's folder and the folder that holds it; keep scripts and examples beside the rulebook"
            ),
        ))
    }
}

impl SourceFile {
    fn read(path: PathBuf) -> Result<Self, RulebookError> {
        let bytes = std::fs::read(&path).map_err(|e| RulebookError::Unreadable {
            file: path.clone(),
            reason: e.to_string(),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            RulebookError::invalid(
                Location::at_offset(path.clone(), &text, offset),
                "the file is not valid UTF-8; save it as UTF-8",
            )
        })?;
        Ok(SourceFile { path, text })
    }

    fn embedded(path: &str, text: &str) -> Self {
        SourceFile {
            path: PathBuf::from(path),
            text: text.to_owned(),
        }
    }
}

/// One file of a rulebook as the store keeps it: its role in the rulebook (`rulebook`,
/// `topics`, `templates`, `teams`, `lexicon`, `tests`, `escalation`, `governance`), the path it
/// was loaded from, and its text. See [`RulebookSource::files`] and
/// [`RulebookSource::from_files`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RulebookFile {
    pub role: String,
    pub path: String,
    pub text: String,
}

/// The text of every file of one rulebook.
#[derive(Debug, Clone)]
pub struct RulebookSource {
    pub rulebook: SourceFile,
    pub topics: SourceFile,
    pub templates: SourceFile,
    pub teams: SourceFile,
    pub lexicon: SourceFile,
    /// Golden cases; optional, and not part of the version (tests do not change decisions).
    pub tests: Option<SourceFile>,
    /// The team's canned replies; optional. Part of the version when present: they are
    /// reviewed like templates, and a stored version must name exactly the replies it had.
    pub replies: Option<SourceFile>,
    pub escalation: SourceFile,
    pub governance: SourceFile,
    /// The classifier's labelled examples (`[classifier] examples`), in the order listed.
    /// They change decisions, so they are part of the version.
    pub examples: Vec<SourceFile>,
}

macro_rules! embedded {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../", $path))
    };
}

/// The example files of the embedded rulebook; `rules/rulebook.toml` lists the same.
const EMBEDDED_EXAMPLES: [(&str, &str); 4] = [
    (
        "rules/examples/nl.jsonl",
        embedded!("rules/examples/nl.jsonl"),
    ),
    (
        "rules/examples/en.jsonl",
        embedded!("rules/examples/en.jsonl"),
    ),
    (
        "rules/examples/other.jsonl",
        embedded!("rules/examples/other.jsonl"),
    ),
    (
        "rules/examples/blind.jsonl",
        embedded!("rules/examples/blind.jsonl"),
    ),
];

impl RulebookSource {
    /// The default rulebook: a Dutch municipality's webcare desk that also understands English.
    pub fn embedded() -> Self {
        RulebookSource {
            rulebook: SourceFile::embedded("rules/rulebook.toml", embedded!("rules/rulebook.toml")),
            topics: SourceFile::embedded("rules/topics.toml", embedded!("rules/topics.toml")),
            templates: SourceFile::embedded(
                "rules/templates.toml",
                embedded!("rules/templates.toml"),
            ),
            teams: SourceFile::embedded("rules/teams.toml", embedded!("rules/teams.toml")),
            lexicon: SourceFile::embedded("rules/lexicon.toml", embedded!("rules/lexicon.toml")),
            tests: Some(SourceFile::embedded(
                "rules/tests.toml",
                embedded!("rules/tests.toml"),
            )),
            replies: Some(SourceFile::embedded(
                "rules/replies.toml",
                embedded!("rules/replies.toml"),
            )),
            escalation: SourceFile::embedded(
                "scripts/escalation.rhai",
                embedded!("scripts/escalation.rhai"),
            ),
            governance: SourceFile::embedded(
                "scripts/governance.rhai",
                embedded!("scripts/governance.rhai"),
            ),
            examples: EMBEDDED_EXAMPLES
                .iter()
                .map(|(path, text)| SourceFile::embedded(path, text))
                .collect(),
        }
    }

    /// Reads a rulebook directory: `rulebook.toml`, `topics.toml`, `templates.toml`, `teams.toml`,
    /// `lexicon.toml`, optionally `tests.toml` and `replies.toml`, and the two scripts
    /// `rulebook.toml` names.
    pub fn from_dir(dir: &Path) -> Result<Self, RulebookErrors> {
        let mut errors = Vec::new();
        let mut read = |name: &str| match SourceFile::read(dir.join(name)) {
            Ok(file) => Some(file),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let rulebook = read("rulebook.toml");
        let topics = read("topics.toml");
        let templates = read("templates.toml");
        let teams = read("teams.toml");
        let lexicon = read("lexicon.toml");
        let tests_path = dir.join("tests.toml");
        let tests = if tests_path.exists() {
            read("tests.toml")
        } else {
            None
        };
        let replies = if dir.join("replies.toml").exists() {
            read("replies.toml")
        } else {
            None
        };
        let config =
            rulebook
                .as_ref()
                .and_then(|file| match toml::from_str::<RulebookConfig>(&file.text) {
                    Ok(config) => Some(config),
                    Err(e) => {
                        errors.push(super::toml_error(file, &e));
                        None
                    }
                });
        let mut examples = Vec::new();
        if let (Some(config), Some(toml)) = (&config, &rulebook) {
            for rel in &config.classifier.examples {
                let at = Location::at_offset(toml.path.clone(), &toml.text, rel.span().start);
                match confined(dir, rel.get_ref(), "jsonl", at).and_then(SourceFile::read) {
                    Ok(file) => examples.push(file),
                    Err(e) => errors.push(e),
                }
            }
        }
        let scripts = config.map(|c| c.scripts);
        let (escalation, governance) = match scripts {
            Some(paths) => {
                let mut read_script = |rel: &str| {
                    let at = rulebook.as_ref().map_or_else(
                        || Location::at_offset(dir.join("rulebook.toml"), "", 0),
                        |toml| {
                            let offset = toml.text.find(&format!("\"{rel}\"")).unwrap_or(0);
                            Location::at_offset(toml.path.clone(), &toml.text, offset)
                        },
                    );
                    match confined(dir, rel, "rhai", at).and_then(SourceFile::read) {
                        Ok(file) => Some(file),
                        Err(e) => {
                            errors.push(e);
                            None
                        }
                    }
                };
                (
                    read_script(&paths.escalation),
                    read_script(&paths.governance),
                )
            }
            None => (None, None),
        };
        match (
            rulebook, topics, templates, teams, lexicon, escalation, governance,
        ) {
            (
                Some(rulebook),
                Some(topics),
                Some(templates),
                Some(teams),
                Some(lexicon),
                Some(escalation),
                Some(governance),
            ) if errors.is_empty() => Ok(RulebookSource {
                rulebook,
                topics,
                templates,
                teams,
                lexicon,
                tests,
                replies,
                escalation,
                governance,
                examples,
            }),
            _ => Err(RulebookErrors(errors)),
        }
    }

    /// Every file with its role, for the store: a stored version is compiled again with
    /// [`RulebookSource::from_files`].
    pub fn files(&self) -> Vec<RulebookFile> {
        let mut files = vec![
            ("rulebook", &self.rulebook),
            ("topics", &self.topics),
            ("templates", &self.templates),
            ("teams", &self.teams),
            ("lexicon", &self.lexicon),
        ];
        if let Some(tests) = &self.tests {
            files.push(("tests", tests));
        }
        if let Some(replies) = &self.replies {
            files.push(("replies", replies));
        }
        files.push(("escalation", &self.escalation));
        files.push(("governance", &self.governance));
        files.extend(self.examples.iter().map(|file| ("examples", file)));
        files
            .into_iter()
            .map(|(role, file)| RulebookFile {
                role: role.to_owned(),
                path: file.path.display().to_string(),
                text: file.text.clone(),
            })
            .collect()
    }

    /// The rulebook of stored `files` (see [`RulebookSource::files`]); errors name every role
    /// that is missing. `tests` is optional, as in a directory.
    pub fn from_files(files: &[RulebookFile]) -> Result<Self, RulebookErrors> {
        let mut errors = Vec::new();
        let mut take = |role: &str| match files.iter().find(|f| f.role == role) {
            Some(f) => Some(SourceFile {
                path: PathBuf::from(&f.path),
                text: f.text.clone(),
            }),
            None => {
                errors.push(RulebookError::Unreadable {
                    file: PathBuf::from(role),
                    reason: "this file is missing from the stored rulebook version".into(),
                });
                None
            }
        };
        let rulebook = take("rulebook");
        let topics = take("topics");
        let templates = take("templates");
        let teams = take("teams");
        let lexicon = take("lexicon");
        let escalation = take("escalation");
        let governance = take("governance");
        let tests = files
            .iter()
            .find(|f| f.role == "tests")
            .map(|f| SourceFile {
                path: PathBuf::from(&f.path),
                text: f.text.clone(),
            });
        let replies = files
            .iter()
            .find(|f| f.role == "replies")
            .map(|f| SourceFile {
                path: PathBuf::from(&f.path),
                text: f.text.clone(),
            });
        let examples = files
            .iter()
            .filter(|f| f.role == "examples")
            .map(|f| SourceFile {
                path: PathBuf::from(&f.path),
                text: f.text.clone(),
            })
            .collect();
        match (
            rulebook, topics, templates, teams, lexicon, escalation, governance,
        ) {
            (
                Some(rulebook),
                Some(topics),
                Some(templates),
                Some(teams),
                Some(lexicon),
                Some(escalation),
                Some(governance),
            ) => Ok(RulebookSource {
                rulebook,
                topics,
                templates,
                teams,
                lexicon,
                tests,
                replies,
                escalation,
                governance,
                examples,
            }),
            _ => Err(RulebookErrors(errors)),
        }
    }

    /// The content hash that names this rulebook version in every decision: the first 12 hex
    /// digits of SHA-256 over every file that affects decisions (the classifier's examples
    /// included). Paths are left out, so the same rules copied elsewhere keep their version.
    pub fn version(&self) -> String {
        let mut hasher = Sha256::new();
        for file in [
            &self.rulebook,
            &self.topics,
            &self.templates,
            &self.teams,
            &self.lexicon,
            &self.escalation,
            &self.governance,
        ]
        .into_iter()
        .chain(&self.examples)
        .chain(&self.replies)
        {
            hasher.update((file.text.len() as u64).to_le_bytes());
            hasher.update(file.text.as_bytes());
        }
        // The matching algorithms decide too: a rulebook that uses stems or typos, or learns
        // from examples, names the algorithms' version, so an upgrade is a new version.
        if !self.examples.is_empty() || uses_variants(&self.rulebook.text, &self.topics.text) {
            hasher.update(crate::matcher::ALGORITHM_VERSION.as_bytes());
        }
        let digest = hasher.finalize();
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Whether the rulebook turns on keyword variants anywhere (a cheap textual test: when in
/// doubt it says yes, which only adds the algorithm version to the hash).
fn uses_variants(rulebook: &str, topics: &str) -> bool {
    rulebook.contains("[matching]")
        || ["stems", "typos", "compounds", "negation"]
            .iter()
            .any(|option| topics.contains(option))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_to_the_same_version() {
        let source = RulebookSource::embedded();
        let files = source.files();
        assert!(files.iter().any(|f| f.role == "tests"));
        let again = RulebookSource::from_files(&files).expect("all files are there");
        assert_eq!(again.version(), source.version());
        assert_eq!(again.escalation.path, source.escalation.path);

        let missing: Vec<_> = files.into_iter().filter(|f| f.role != "teams").collect();
        let errors = RulebookSource::from_files(&missing).expect_err("teams is missing");
        assert!(errors.to_string().contains("teams"), "{errors}");
    }
}
