//! A rulebook: topics, templates, teams, lexicon, golden cases and the two scripts, compiled
//! once into the runtime form the pipeline uses. [`Rulebook::compile`] validates everything and
//! collects every error with its file position before anything runs: a rulebook is used whole
//! or not at all, never half.

pub mod cases;
pub mod config;
pub mod error;
pub mod golden_cases;
mod groups;
mod matching;
mod references;
mod shorthand;
pub mod source;
mod teams;
mod templates;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use chrono_tz::Tz;
use rhai::ImmutableString;
use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::decision::{Category, Language};
use crate::lexicon::Lexicon;
use crate::matcher::{MatchOptions, Matcher, TopicSpec};
use crate::message::ChannelKind;
use crate::normalize::normalize;
use crate::script::ScriptHost;
use crate::teams::Teams;
use crate::templates::Templates;
use config::{
    LexiconFile, RepliesFile, RulebookConfig, TeamsFile, TemplatesFile, TestsFile, TopicsFile,
};
pub use error::{Location, RulebookError, RulebookErrors};
use golden_cases::GoldenCase;
use matching::{common_words, matcher_settings, report_term_error};
pub use source::{RulebookFile, RulebookSource, SourceFile};

/// Templates every rulebook must have: the fail-safe escalation needs them.
pub const REQUIRED_TEMPLATES: [&str; 2] = ["holding_open", "holding_closed"];

/// Which category wins when a message matches several, strongest first.
const DEFAULT_CATEGORY_ORDER: [Category; 13] = [
    Category::Crisis,
    Category::Distress,
    Category::Abuse,
    Category::Legal,
    Category::Press,
    Category::Complaint,
    Category::Report,
    Category::Question,
    Category::Lead,
    Category::Idea,
    Category::Compliment,
    Category::Spam,
    Category::Unknown,
];

/// Extra facts about a topic that the scripts read, interned once.
pub struct TopicInfo {
    pub id: ImmutableString,
    pub category: ImmutableString,
    pub template: ImmutableString,
    pub team: ImmutableString,
}

/// A compiled rulebook, ready to decide.
pub struct Rulebook {
    pub name: String,
    pub version: String,
    pub default_team: String,
    /// `default_team` as the scripts read it, made once.
    pub(crate) default_team_name: rhai::ImmutableString,
    pub default_language: Language,
    pub crisis_mode: bool,
    pub(crate) matcher: Matcher,
    pub(crate) topic_info: rustc_hash::FxHashMap<String, TopicInfo>,
    pub(crate) lexicon: Lexicon,
    pub(crate) templates: Templates,
    /// The team's canned replies (`replies.toml`); empty without that file.
    pub(crate) replies: crate::replies::CannedReplies,
    pub(crate) teams: Arc<Teams>,
    pub(crate) scripts: ScriptHost,
    pub(crate) reply_limits: [usize; ChannelKind::ALL.len()],
    pub(crate) golden: Vec<GoldenCase>,
    /// What `webcare eval` demands of this rulebook's decisions.
    pub eval: config::EvalConfig,
    /// `[cases]`: reopening and satisfaction questions.
    pub cases: cases::CasesPolicy,
    /// The classifier's labelled examples, as loaded.
    pub examples: Vec<crate::examples::Example>,
    /// The learned second opinion; `None` when the rulebook lists no examples.
    pub(crate) classifier: Option<Arc<crate::classifier::Classifier>>,
    pub(crate) languages: crate::language::LanguageDetector,
    pub source: RulebookSource,
}

/// Turns a TOML parse error into a positioned rulebook error.
pub(crate) fn toml_error(file: &SourceFile, error: &toml::de::Error) -> RulebookError {
    let at = match error.span() {
        Some(span) => Location::at_span(file.path.clone(), &file.text, span),
        None => Location {
            file: file.path.clone(),
            line: 1,
            column: 1,
        },
    };
    RulebookError::invalid(at, error.message().trim().to_owned())
}

fn parse<T: DeserializeOwned>(file: &SourceFile, errors: &mut Vec<RulebookError>) -> Option<T> {
    match toml::from_str(&file.text) {
        Ok(value) => Some(value),
        Err(e) => {
            errors.push(toml_error(file, &e));
            None
        }
    }
}

/// Checks `replies.toml` (titles and both texts present, placeholders known, teams defined)
/// and compiles it; every error names its line and column.
fn compile_replies(
    file: &SourceFile,
    parsed: &RepliesFile,
    team_ids: &BTreeSet<String>,
    errors: &mut Vec<RulebookError>,
) -> crate::replies::CannedReplies {
    let mut check = Checker { file, errors };
    // File order, not the map's alphabetical order: a lead puts the most used first.
    let mut ordered: Vec<_> = parsed.iter().collect();
    ordered.sort_by_key(|(_, spanned)| spanned.span().start);
    let mut out = Vec::new();
    for (id, spanned) in ordered {
        let r = spanned.get_ref();
        for (field, text) in [
            ("title_nl", &r.title_nl),
            ("title_en", &r.title_en),
            ("nl", &r.nl),
            ("en", &r.en),
        ] {
            if text.trim().is_empty() {
                check.at(
                    spanned,
                    format!("canned reply `{id}` has an empty `{field}`"),
                );
            }
        }
        for text in [&r.nl, &r.en] {
            for (name, _) in crate::replies::unknown_placeholders(text) {
                check.at(
                    spanned,
                    format!(
                        "canned reply `{id}` uses unknown placeholder `{{{name}}}`; known: {{name}}, {{deadline}}, {{team}}, {{agent}}"
                    ),
                );
            }
        }
        for team in &r.teams {
            if !team_ids.contains(team.get_ref()) {
                check.at(
                    team,
                    format!(
                        "canned reply `{id}` names team `{}`, which teams.toml does not define",
                        team.get_ref()
                    ),
                );
            }
        }
        out.push(crate::replies::CannedReply {
            id: id.clone(),
            title_nl: r.title_nl.clone(),
            title_en: r.title_en.clone(),
            nl: r.nl.clone(),
            en: r.en.clone(),
            teams: r.teams.iter().map(|t| t.get_ref().clone()).collect(),
        });
    }
    crate::replies::CannedReplies::new(out)
}

/// Collects errors against one file.
struct Checker<'a> {
    file: &'a SourceFile,
    errors: &'a mut Vec<RulebookError>,
}

impl Checker<'_> {
    fn at<T>(&mut self, spanned: &Spanned<T>, message: impl Into<String>) {
        self.errors.push(RulebookError::invalid(
            Location::at_span(self.file.path.clone(), &self.file.text, spanned.span()),
            message,
        ));
    }

    /// A lexicon word, normalised; an error at its place when it is not one word.
    fn one_word(&mut self, word: &Spanned<String>) -> Option<String> {
        let n = normalize(word.get_ref());
        if n.is_empty() || n.contains(' ') {
            self.at(word, format!("`{}` must be a single word", word.get_ref()));
            None
        } else {
            Some(n)
        }
    }
}

fn default_reply_limit(kind: ChannelKind) -> usize {
    match kind {
        ChannelKind::Telegram => 4096,
        ChannelKind::Discord => 2000,
        ChannelKind::Webchat | ChannelKind::Http | ChannelKind::Terminal => 2000,
        // WhatsApp takes 4096 characters of text; Messenger 2000; Instagram 1000.
        ChannelKind::Whatsapp => 4096,
        ChannelKind::Messenger => 2000,
        ChannelKind::Instagram => 1000,
        // Mail has no limit, but a first-line answer that long is no longer short.
        ChannelKind::Email => 4000,
    }
}

impl Rulebook {
    /// The default rulebook embedded in the binary.
    pub fn embedded() -> Result<Self, RulebookErrors> {
        Rulebook::compile(RulebookSource::embedded())
    }

    /// Reads and compiles the rulebook in `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self, RulebookErrors> {
        Rulebook::compile(RulebookSource::from_dir(dir)?)
    }

    /// Validates and compiles `source`, reporting every error found.
    pub fn compile(source: RulebookSource) -> Result<Self, RulebookErrors> {
        let mut errors = Vec::new();
        let config: Option<RulebookConfig> = parse(&source.rulebook, &mut errors);
        let topics: Option<TopicsFile> = parse(&source.topics, &mut errors);
        let templates_file: Option<TemplatesFile> = parse(&source.templates, &mut errors);
        let teams_file: Option<TeamsFile> = parse(&source.teams, &mut errors);
        let lexicon_file: Option<LexiconFile> = parse(&source.lexicon, &mut errors);
        let replies_file: Option<RepliesFile> = match &source.replies {
            Some(file) => parse(file, &mut errors),
            None => Some(RepliesFile::new()),
        };
        let tests_file: Option<TestsFile> = match &source.tests {
            Some(file) => parse(file, &mut errors),
            None => Some(TestsFile { case: Vec::new() }),
        };
        let scripts = match (
            &config,
            ScriptHost::compile(
                &config
                    .as_ref()
                    .map(|c| c.script_limits.clone())
                    .unwrap_or_default(),
                &source.escalation,
                &source.governance,
            ),
        ) {
            (_, Ok(host)) => Some(host),
            (_, Err(script_errors)) => {
                errors.extend(script_errors);
                None
            }
        };
        let (
            Some(config),
            Some(topics),
            Some(templates_file),
            Some(teams_file),
            Some(lexicon_file),
            Some(tests_file),
            Some(replies_file),
        ) = (
            config,
            topics,
            templates_file,
            teams_file,
            lexicon_file,
            tests_file,
            replies_file,
        )
        else {
            return Err(RulebookErrors(errors));
        };

        // rulebook.toml
        let mut check = Checker {
            file: &source.rulebook,
            errors: &mut errors,
        };
        let timezone: Tz = config.timezone.get_ref().parse().unwrap_or_else(|_| {
            check.at(
                &config.timezone,
                format!(
                    "unknown time zone `{}`; use an IANA name like `Europe/Amsterdam`",
                    config.timezone.get_ref()
                ),
            );
            Tz::UTC
        });
        let default_language: Language =
            config
                .default_language
                .get_ref()
                .parse()
                .unwrap_or_else(|e: String| {
                    check.at(&config.default_language, e);
                    Language::Nl
                });
        let category_order: Vec<Category> = match &config.category_order {
            None => DEFAULT_CATEGORY_ORDER.to_vec(),
            Some(order) => {
                let mut parsed = Vec::new();
                for name in order.get_ref() {
                    match name.parse::<Category>() {
                        Ok(c) => parsed.push(c),
                        Err(e) => check.at(order, e),
                    }
                }
                // Categories left out rank after the listed ones, in the default order.
                let missing: Vec<Category> = DEFAULT_CATEGORY_ORDER
                    .into_iter()
                    .filter(|c| !parsed.contains(c))
                    .collect();
                parsed.extend(missing);
                parsed
            }
        };
        let mut reply_limits = ChannelKind::ALL.map(default_reply_limit);
        for (i, channel) in [
            &config.channels.telegram,
            &config.channels.discord,
            &config.channels.webchat,
            &config.channels.http,
            &config.channels.terminal,
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(c) = channel {
                reply_limits[i] = c.max_reply_chars.max(1);
            }
        }

        let (teams, team_ids) =
            teams::compile(&source, &teams_file, &config.default_team, &mut errors);
        let templates = templates::compile(
            &source.templates,
            &templates_file,
            default_language,
            &mut errors,
        );

        // topics.toml
        let mut check = Checker {
            file: &source.topics,
            errors: &mut errors,
        };
        let mut specs = Vec::new();
        let mut expanded = Vec::with_capacity(topics.topic.len());
        let mut topic_info = rustc_hash::FxHashMap::default();
        let shorthand = shorthand::Shorthand::new(&lexicon_file.shorthand);
        for topic in &topics.topic {
            let id = topic.id.get_ref();
            let category = topic
                .category
                .get_ref()
                .parse::<Category>()
                .unwrap_or_else(|e| {
                    check.at(&topic.category, e);
                    Category::Unknown
                });
            if let Some(template) = &topic.template
                && !templates.contains(template.get_ref())
            {
                check.at(
                    template,
                    format!(
                        "topic `{id}` uses template `{}`, which templates.toml does not define",
                        template.get_ref()
                    ),
                );
            }
            if let Some(team) = &topic.team
                && !team_ids.contains(team.get_ref())
            {
                check.at(
                    team,
                    format!(
                        "topic `{id}` names team `{}`, which teams.toml does not define",
                        team.get_ref()
                    ),
                );
            }
            if topic.keywords.is_empty() && topic.patterns.is_empty() {
                check.at(
                    &topic.id,
                    format!("topic `{id}` has no keywords or patterns, so it can never match"),
                );
            }
            let info = TopicInfo {
                id: id.as_str().into(),
                category: category.as_str().into(),
                template: topic
                    .template
                    .as_ref()
                    .map(|t| t.get_ref().as_str().into())
                    .unwrap_or_default(),
                team: topic
                    .team
                    .as_ref()
                    .map(|t| t.get_ref().as_str().into())
                    .unwrap_or_default(),
            };
            if topic_info.insert(id.clone(), info).is_some() {
                check.at(&topic.id, format!("topic `{id}` is defined twice"));
            }
            let defaults = config.matching;
            let keywords = shorthand.spell_out(groups::expand(
                &topic.keywords,
                &lexicon_file.groups,
                &mut check,
            ));
            let exclude = shorthand.spell_out(groups::expand(
                &topic.exclude,
                &lexicon_file.groups,
                &mut check,
            ));
            specs.push(TopicSpec {
                id: id.clone(),
                category,
                keywords: strings(&keywords),
                patterns: strings(&topic.patterns),
                exclude: strings(&exclude),
                options: MatchOptions {
                    stems: topic.stems.unwrap_or(defaults.stems),
                    compounds: topic.compounds.unwrap_or(defaults.compounds),
                    typos: topic.typos.unwrap_or(defaults.typos),
                    negation: topic.negation.unwrap_or(defaults.negation),
                },
            });
            expanded.push(groups::Expanded { keywords, exclude });
        }
        // examples/*.jsonl, read once for the matcher's common words and the classifier; their
        // errors are reported after the topics', where they always were.
        let mut examples = Vec::new();
        let mut example_errors = Vec::new();
        for file in &source.examples {
            match crate::examples::parse_examples(file) {
                Ok(parsed) => examples.extend(parsed),
                Err(file_errors) => example_errors.extend(file_errors),
            }
        }
        let wants_negation = specs.iter().any(|s| s.options.negation);
        let mut matcher_settings =
            matcher_settings(&lexicon_file, &source.lexicon, wants_negation, &mut errors);
        matcher_settings.known_words.extend(common_words(&examples));
        let rank = |c: Category| {
            category_order
                .iter()
                .position(|o| *o == c)
                .unwrap_or(u8::MAX as usize) as u8
        };
        let mut check = Checker {
            file: &source.topics,
            errors: &mut errors,
        };
        let matcher = match Matcher::build(specs, rank, matcher_settings) {
            Ok(m) => Some(m),
            Err(term_errors) => {
                for e in term_errors {
                    report_term_error(&mut check, &topics.topic, &expanded, e);
                }
                None
            }
        };

        // Names used in the scripts.
        let known = references::Known {
            templates: &templates,
            teams: &team_ids,
            topics: &|id: &str| topic_info.contains_key(id),
        };
        for script in [&source.escalation, &source.governance] {
            references::check_script(script, &known, &mut errors);
        }

        // lexicon.toml
        let mut check = Checker {
            file: &source.lexicon,
            errors: &mut errors,
        };
        groups::check_groups(&lexicon_file.groups, &mut check);
        shorthand::check_shorthand(&lexicon_file.shorthand, &mut check);
        let mut lexicon = Lexicon::default();
        let s = &lexicon_file.sentiment;
        for (words, score) in [
            (&s.very_negative, -2),
            (&s.negative, -1),
            (&s.positive, 1),
            (&s.very_positive, 2),
        ] {
            for w in words {
                if let Some(n) = check.one_word(w) {
                    lexicon.add_score(&n, score);
                }
            }
        }
        for w in &s.negators {
            if let Some(n) = check.one_word(w) {
                lexicon.add_negator(&n);
            }
        }
        for (words, language) in [
            (&lexicon_file.language.nl, Language::Nl),
            (&lexicon_file.language.en, Language::En),
        ] {
            for w in words {
                if let Some(n) = check.one_word(w) {
                    lexicon.add_language_word(&n, language);
                }
            }
        }
        // In the order of `language::WORD_LISTED`.
        for (index, words) in [&lexicon_file.language.fy, &lexicon_file.language.pap]
            .into_iter()
            .enumerate()
        {
            for w in words {
                if let Some(n) = check.one_word(w) {
                    lexicon.add_listed_language_word(&n, index);
                }
            }
        }

        // replies.toml
        let replies = match &source.replies {
            Some(file) => compile_replies(file, &replies_file, &team_ids, &mut errors),
            None => crate::replies::CannedReplies::default(),
        };

        // tests.toml
        let golden = match &source.tests {
            Some(file) => golden_cases::compile(
                file,
                &tests_file,
                timezone,
                &team_ids,
                &topic_info,
                &mut errors,
            ),
            None => Vec::new(),
        };

        errors.extend(example_errors);
        let classifier = if source.examples.is_empty() || !errors.is_empty() {
            None
        } else {
            match crate::classifier::Classifier::train(&examples) {
                Ok(classifier) => Some(classifier),
                Err(e) => {
                    let file = &source.examples[0];
                    errors.push(RulebookError::invalid(
                        Location {
                            file: file.path.clone(),
                            line: 1,
                            column: 1,
                        },
                        format!("the classifier cannot learn from these examples: {e}"),
                    ));
                    None
                }
            }
        };
        // The lexicon learns the classifier's words, so that a message's words are looked up
        // once for both (lexicon.rs).
        if let Some(classifier) = &classifier {
            lexicon.learn_vocabulary(classifier.vocabulary());
        }
        for (name, value) in [
            ("min_critical_recall", config.eval.min_critical_recall),
            ("min_acceptable", config.eval.min_acceptable),
        ] {
            if !(0.0..=1.0).contains(&value) {
                errors.push(RulebookError::invalid(
                    Location {
                        file: source.rulebook.path.clone(),
                        line: 1,
                        column: 1,
                    },
                    format!("[eval] {name} = {value} must be between 0 and 1"),
                ));
            }
        }

        let cases = cases::build(
            config.cases,
            &templates,
            &source.rulebook.path,
            &source.rulebook.text,
            &mut errors,
        );

        match (matcher, scripts) {
            (Some(matcher), Some(scripts)) if errors.is_empty() => Ok(Rulebook {
                name: config.name,
                version: source.version(),
                default_team_name: config.default_team.get_ref().as_str().into(),
                default_team: config.default_team.into_inner(),
                default_language,
                crisis_mode: config.crisis_mode,
                matcher,
                topic_info,
                lexicon,
                templates,
                replies,
                teams: Arc::new(Teams::new(timezone, teams)),
                scripts,
                reply_limits,
                golden,
                eval: config.eval,
                cases,
                examples,
                classifier,
                languages: crate::language::LanguageDetector::new(),
                source,
            }),
            _ => {
                errors.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
                Err(RulebookErrors(errors))
            }
        }
    }

    pub fn teams(&self) -> &Teams {
        &self.teams
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// The team's canned replies, for the inbox's reply box.
    pub fn replies(&self) -> &crate::replies::CannedReplies {
        &self.replies
    }

    /// Each script's name, and why it runs on the Rhai interpreter when it is not compiled.
    pub fn interpreted_scripts(&self) -> [(&str, Option<&str>); 2] {
        self.scripts.interpreted()
    }

    pub fn topic_count(&self) -> usize {
        self.matcher.topics().len()
    }

    pub fn keyword_count(&self) -> usize {
        self.matcher.keyword_count()
    }

    /// Every topic with the template it answers with (`template` in topics.toml), in no
    /// particular order; topics that always go to a person have none. `webcare eval` judges an
    /// answer by it.
    pub fn topic_templates(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.topic_info.iter().map(|(id, info)| {
            let template = (!info.template.is_empty()).then_some(info.template.as_str());
            (id.as_str(), template)
        })
    }

    pub fn golden_cases(&self) -> &[GoldenCase] {
        &self.golden
    }

    pub fn reply_limit(&self, channel: ChannelKind) -> usize {
        let i = ChannelKind::ALL
            .iter()
            .position(|c| *c == channel)
            .unwrap_or(0);
        self.reply_limits[i]
    }
}

fn strings(list: &[Spanned<String>]) -> Vec<String> {
    list.iter().map(|s| s.get_ref().clone()).collect()
}
