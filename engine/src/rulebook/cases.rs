//! `[cases]` in `rulebook.toml`: the settings of the case rules that belong to the rulebook
//! (reviewed and versioned with it) rather than to the machine: how long after resolution a
//! customer's message reopens an escalation, and whether and how often customers are asked for
//! a satisfaction score. Validated completely at load, each error at its line.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::error::{Location, RulebookError};
use crate::case::satisfaction::SurveyPolicy;
use crate::case::state::DEFAULT_REOPEN_DAYS;
use crate::decision::Language;
use crate::templates::Templates;

/// `[cases]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesConfig {
    /// Days after resolution in which a customer's message for the same team reopens the
    /// escalation instead of opening a new one; 0 never reopens. Default 7, at most 90.
    #[serde(default = "default_reopen")]
    pub reopen_days: Spanned<u32>,
    #[serde(default)]
    pub satisfaction: Option<SatisfactionConfig>,
}

fn default_reopen() -> Spanned<u32> {
    Spanned::new(0..0, DEFAULT_REOPEN_DAYS)
}

impl Default for CasesConfig {
    fn default() -> Self {
        CasesConfig {
            reopen_days: default_reopen(),
            satisfaction: None,
        }
    }
}

/// `[cases.satisfaction]`: off unless `enabled = true`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SatisfactionConfig {
    #[serde(default)]
    pub enabled: bool,
    /// The template that asks (in templates.toml, with `nl` and `en`).
    #[serde(default = "default_template")]
    pub template: Spanned<String>,
    /// A customer is asked at most once in this many days (1 to 365). Default 30.
    #[serde(default = "default_every")]
    pub every_days: Spanned<u32>,
}

fn default_template() -> Spanned<String> {
    Spanned::new(0..0, "satisfaction".to_owned())
}

fn default_every() -> Spanned<u32> {
    Spanned::new(0..0, 30)
}

/// The compiled `[cases]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasesPolicy {
    pub reopen_within: chrono::Duration,
    /// `None`: nobody is asked.
    pub satisfaction: Option<SurveyPolicy>,
}

impl Default for CasesPolicy {
    fn default() -> Self {
        CasesPolicy {
            reopen_within: chrono::Duration::days(i64::from(DEFAULT_REOPEN_DAYS)),
            satisfaction: None,
        }
    }
}

/// Checks and compiles `[cases]` of `file` (whose text is `text`); errors go to `errors`.
pub fn build(
    config: CasesConfig,
    templates: &Templates,
    file: &Path,
    text: &str,
    errors: &mut Vec<RulebookError>,
) -> CasesPolicy {
    let at = |span: std::ops::Range<usize>| Location::at_span(file, text, span);
    let reopen = *config.reopen_days.get_ref();
    if reopen > 90 {
        errors.push(RulebookError::invalid(
            at(config.reopen_days.span()),
            format!("[cases] reopen_days = {reopen} must be between 0 and 90"),
        ));
    }
    let satisfaction = config.satisfaction.filter(|s| s.enabled).map(|s| {
        let every = *s.every_days.get_ref();
        if !(1..=365).contains(&every) {
            errors.push(RulebookError::invalid(
                at(s.every_days.span()),
                format!("[cases.satisfaction] every_days = {every} must be between 1 and 365"),
            ));
        }
        let template = s.template.get_ref();
        for language in [Language::Nl, Language::En] {
            if !templates.speaks(template, language.as_str()) {
                errors.push(RulebookError::invalid(
                    at(s.template.span()),
                    format!(
                        "[cases.satisfaction] template `{template}` needs a reviewed `{}` text in templates.toml",
                        language.as_str()
                    ),
                ));
            }
        }
        SurveyPolicy {
            template: template.clone(),
            every: chrono::Duration::days(i64::from(every)),
        }
    });
    CasesPolicy {
        reopen_within: chrono::Duration::days(i64::from(reopen)),
        satisfaction,
    }
}

/// What a store needs to ask for a score when a person resolves an escalation under
/// `rulebook`: `None` when `[cases.satisfaction]` is off.
pub fn survey_ask(rulebook: &super::Rulebook) -> Option<crate::case::satisfaction::SurveyAsk> {
    let policy = rulebook.cases.satisfaction.as_ref()?;
    let text = |language| {
        rulebook
            .templates()
            .text(&policy.template, language)
            .map(str::to_owned)
    };
    Some(crate::case::satisfaction::SurveyAsk {
        every: policy.every,
        nl: text(Language::Nl)?,
        en: text(Language::En)?,
    })
}
