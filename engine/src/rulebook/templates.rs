//! templates.toml compiled: every reply's texts, with `{link}` filled in and placeholders
//! checked, and the templates a holding reply cannot do without.

use super::config::TemplatesFile;
use super::{Checker, Location, REQUIRED_TEMPLATES, RulebookError, SourceFile};
use crate::decision::Language;
use crate::templates::{Template, Templates, unknown_placeholders};

/// templates.toml: every template's texts with `{link}` filled in, checked for the default
/// language, known placeholders and the templates a holding reply needs.
pub(super) fn compile(
    file: &SourceFile,
    templates_file: &TemplatesFile,
    default_language: Language,
    errors: &mut Vec<RulebookError>,
) -> Templates {
    let mut check = Checker { file, errors };
    let mut templates = Templates::new(default_language);
    for (id, spanned) in templates_file {
        let t = spanned.get_ref();
        let default_text = match default_language {
            Language::Nl => &t.nl,
            Language::En => &t.en,
        };
        if default_text.is_none() {
            check.at(
                spanned,
                format!(
                    "template `{id}` has no text in the default language `{}`",
                    default_language.as_str()
                ),
            );
        }
        let fill = |text: &Option<String>| {
            text.as_ref().map(|text| match &t.link {
                Some(link) => text.replace("{link}", link),
                None => text.clone(),
            })
        };
        let (nl, en) = (fill(&t.nl), fill(&t.en));
        let mut other = Vec::new();
        for (code, text) in &t.other {
            if code.len() == 2 && code.bytes().all(|b| b.is_ascii_lowercase()) {
                other.push((code.clone(), fill(&Some(text.clone())).unwrap_or_default()));
            } else {
                check.at(
                    spanned,
                    format!(
                        "template `{id}` has an unknown key `{code}`; expected nl, en, link or a two-letter language code such as de"
                    ),
                );
            }
        }
        for text in [&nl, &en]
            .into_iter()
            .flatten()
            .chain(other.iter().map(|(_, text)| text))
        {
            for name in unknown_placeholders(text) {
                let hint = if name == "link" {
                    " (add `link = \"https://…\"` to the template)".to_owned()
                } else {
                    String::new()
                };
                check.at(
                    spanned,
                    format!(
                        "template `{id}` uses unknown placeholder `{{{name}}}`{hint}; known: {{next_open}}, {{within}}, {{deadline}}, {{team}}, {{link}}"
                    ),
                );
            }
        }
        templates.insert(id.clone(), Template { nl, en, other });
    }
    for required in REQUIRED_TEMPLATES {
        if !templates.contains(required) {
            errors.push(RulebookError::invalid(
                Location {
                    file: file.path.clone(),
                    line: 1,
                    column: 1,
                },
                format!("the required template `{required}` is missing (holding replies need it)"),
            ));
        }
    }

    templates
}
