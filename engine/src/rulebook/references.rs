//! Static checks of the names scripts use. A script that says `answer("pasport", …)` or
//! `escalate("legall", …)` would compile, then send every such message to the fail-safe at run
//! time. Most names in scripts are string literals, so `check` can find them in the text and
//! refuse a misspelt template, team, priority, topic or category with its exact position.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use regex::Regex;

use super::error::{Location, RulebookError};
use super::source::SourceFile;
use crate::decision::{Category, Priority};
use crate::templates::Templates;

/// What a literal in a script must name.
#[derive(Clone, Copy)]
enum Kind {
    Template,
    Team,
    Priority,
    Topic,
    Category,
}

fn patterns() -> &'static [(Regex, &'static [Kind])] {
    static PATTERNS: OnceLock<Vec<(Regex, &'static [Kind])>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let table: [(&str, &'static [Kind]); 9] = [
            (r#"\banswer\(\s*"([^"]*)""#, &[Kind::Template]),
            (
                r#"\bescalate\(\s*"([^"]*)"\s*,\s*"([^"]*)""#,
                &[Kind::Team, Kind::Priority],
            ),
            (r#"\.template\s*=\s*"([^"]*)""#, &[Kind::Template]),
            (r#"\.team\s*=\s*"([^"]*)""#, &[Kind::Team]),
            (r#"\.priority\s*=\s*"([^"]*)""#, &[Kind::Priority]),
            (
                r#"\bteams\.(?:is_open|next_open)\(\s*"([^"]*)""#,
                &[Kind::Team],
            ),
            (r#"\bhas_topic\(\s*"([^"]*)""#, &[Kind::Topic]),
            (r#"\bhas_category\(\s*"([^"]*)""#, &[Kind::Category]),
            (r#"\bmsg\.category\s*[!=]=\s*"([^"]*)""#, &[Kind::Category]),
        ];
        table
            .into_iter()
            .filter_map(|(pattern, kinds)| Regex::new(pattern).ok().map(|re| (re, kinds)))
            .collect()
    })
}

/// The names a rulebook defines.
pub struct Known<'a> {
    pub templates: &'a Templates,
    pub teams: &'a BTreeSet<String>,
    pub topics: &'a dyn Fn(&str) -> bool,
}

pub fn check_script(file: &SourceFile, known: &Known<'_>, errors: &mut Vec<RulebookError>) {
    for (re, kinds) in patterns() {
        for caps in re.captures_iter(&file.text) {
            let Some(whole) = caps.get(0) else { continue };
            let line_start = file.text[..whole.start()].rfind('\n').map_or(0, |i| i + 1);
            if file.text[line_start..whole.start()].contains("//") {
                continue; // a comment
            }
            for (i, kind) in kinds.iter().enumerate() {
                let Some(name) = caps.get(i + 1) else {
                    continue;
                };
                let value = name.as_str();
                let problem = match kind {
                    Kind::Template if !value.is_empty() && !known.templates.contains(value) => {
                        Some(format!(
                            "template `{value}` is not defined in templates.toml"
                        ))
                    }
                    Kind::Team if !known.teams.contains(value) => {
                        Some(format!("team `{value}` is not defined in teams.toml"))
                    }
                    Kind::Priority => value.parse::<Priority>().err(),
                    Kind::Topic if !(known.topics)(value) => {
                        Some(format!("topic `{value}` is not defined in topics.toml"))
                    }
                    Kind::Category => value.parse::<Category>().err(),
                    _ => None,
                };
                if let Some(message) = problem {
                    let at = Location::at_offset(file.path.clone(), &file.text, name.start());
                    errors.push(RulebookError::invalid(at, message));
                }
            }
        }
    }
}
