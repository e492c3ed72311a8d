//! The rulebook as written: serde types mirroring the TOML files one to one. Nothing here is
//! used on the per-message path; [`super::Rulebook::compile`] turns these into runtime types.
//! Values a governance lead may get wrong carry their [`Spanned`] position so errors can point
//! at them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// `rulebook.toml`: the settings that hold the other files together.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulebookConfig {
    pub name: String,
    /// IANA time zone for office hours, e.g. `Europe/Amsterdam`.
    pub timezone: Spanned<String>,
    /// The team that gets everything nobody else takes, and every fail-safe escalation.
    pub default_team: Spanned<String>,
    pub default_language: Spanned<String>,
    /// Crisis mode at start; the running service can switch it.
    #[serde(default)]
    pub crisis_mode: bool,
    pub scripts: ScriptPaths,
    /// Which category wins when a message matches topics of several categories, strongest first.
    #[serde(default)]
    pub category_order: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub channels: ChannelsConfig,
    #[serde(default)]
    pub script_limits: ScriptLimitsConfig,
    #[serde(default)]
    pub matching: MatchingConfig,
    #[serde(default)]
    pub classifier: ClassifierConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    /// `[cases]`: reopening and satisfaction (see [`super::cases`]).
    #[serde(default)]
    pub cases: super::cases::CasesConfig,
}

/// `[matching]`: the keyword variants every topic accepts unless it says otherwise. All off
/// when the section is missing, which is how rulebooks matched before these existed.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchingConfig {
    pub stems: bool,
    pub compounds: bool,
    pub typos: bool,
    pub negation: bool,
}

/// `[classifier]`: the labelled examples the second opinion learns from when the rulebook
/// loads. They are part of the rulebook and of its version.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// JSON Lines files, relative to the rules directory.
    #[serde(default)]
    pub examples: Vec<Spanned<String>>,
}

/// `[eval]`: what `webcare eval` demands of the rulebook's decisions on labelled messages;
/// below either figure it exits non-zero, so CI guards decision quality like the golden cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Share of critical messages (press, legal, crisis, distress, abuse) that must reach
    /// their team, from 0 to 1.
    pub min_critical_recall: f64,
    /// Share of all messages whose decision must be acceptable, from 0 to 1.
    pub min_acceptable: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            min_critical_recall: 1.0,
            min_acceptable: 0.95,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptPaths {
    /// Relative to the rules directory.
    pub escalation: String,
    pub governance: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsConfig {
    pub telegram: Option<ChannelConfig>,
    pub discord: Option<ChannelConfig>,
    pub webchat: Option<ChannelConfig>,
    pub http: Option<ChannelConfig>,
    pub terminal: Option<ChannelConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// The longest reply the platform accepts, in characters.
    pub max_reply_chars: usize,
}

/// Sandbox limits for both scripts. Every limit is explicit because Rhai's defaults differ
/// between debug and release builds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScriptLimitsConfig {
    #[serde(deserialize_with = "limits::operations")]
    pub max_operations: u64,
    #[serde(deserialize_with = "limits::call_depth")]
    pub max_call_depth: usize,
    #[serde(deserialize_with = "limits::expression_depth")]
    pub max_expression_depth: usize,
    #[serde(deserialize_with = "limits::string_size")]
    pub max_string_size: usize,
    #[serde(deserialize_with = "limits::collection_size")]
    pub max_array_size: usize,
    #[serde(deserialize_with = "limits::collection_size")]
    pub max_map_size: usize,
    #[serde(deserialize_with = "limits::count")]
    pub max_variables: usize,
    #[serde(deserialize_with = "limits::count")]
    pub max_functions: usize,
}

/// The range each `[script_limits]` value must lie in. Rhai reads 0 as "no limit" (a looping
/// script would then pin a CPU for good, or build strings until memory runs out), and depths
/// beyond these overflow the stack of the threads that decide messages: so a rulebook that
/// asks for either is refused at `check`, with the line of the value, instead of taking the
/// service down later.
mod limits {
    use serde::{Deserialize, Deserializer, de::Error};

    fn within<'de, D: Deserializer<'de>>(
        deserializer: D,
        min: u64,
        max: u64,
        why: &str,
    ) -> Result<u64, D::Error> {
        let value = u64::deserialize(deserializer)?;
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(D::Error::custom(format!(
                "must be between {min} and {max}, not {value}: {why}"
            )))
        }
    }

    fn within_usize<'de, D: Deserializer<'de>>(
        deserializer: D,
        min: u64,
        max: u64,
        why: &str,
    ) -> Result<usize, D::Error> {
        within(deserializer, min, max, why).map(|v| usize::try_from(v).unwrap_or(usize::MAX))
    }

    pub fn operations<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        within(
            d,
            1,
            10_000_000,
            "0 means no limit, and a message must never run for seconds",
        )
    }
    pub fn call_depth<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        within_usize(
            d,
            1,
            64,
            "deeper calls could overflow the stack of the deciding threads",
        )
    }
    pub fn expression_depth<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        within_usize(
            d,
            8,
            128,
            "deeper nesting could overflow the stack of the deciding threads",
        )
    }
    pub fn string_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        within_usize(
            d,
            1_024,
            16 * 1024 * 1024,
            "0 means no limit on the memory a script may take",
        )
    }
    pub fn collection_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        within_usize(
            d,
            16,
            1_000_000,
            "0 means no limit on the memory a script may take",
        )
    }
    pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        within_usize(d, 16, 100_000, "0 means no limit")
    }
}

impl Default for ScriptLimitsConfig {
    fn default() -> Self {
        ScriptLimitsConfig {
            max_operations: 100_000,
            max_call_depth: 32,
            max_expression_depth: 64,
            max_string_size: 64 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            max_variables: 1_000,
            max_functions: 256,
        }
    }
}

/// `topics.toml`: what customers talk about, and how to recognise it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsFile {
    #[serde(default)]
    pub topic: Vec<TopicConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    pub id: Spanned<String>,
    pub category: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Whole words or phrases; a trailing `*` also matches longer words (`paspoort*`).
    #[serde(default)]
    pub keywords: Vec<Spanned<String>>,
    /// Regular expressions, run on the normalised text.
    #[serde(default)]
    pub patterns: Vec<Spanned<String>>,
    /// Words that veto the topic when present (same syntax as keywords).
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    /// The answer template the scripts use for this topic.
    #[serde(default)]
    pub template: Option<Spanned<String>>,
    /// The team that owns this topic when it needs a human.
    #[serde(default)]
    pub team: Option<Spanned<String>>,
    /// Overrides of `[matching]` in rulebook.toml for this topic.
    #[serde(default)]
    pub stems: Option<bool>,
    #[serde(default)]
    pub compounds: Option<bool>,
    #[serde(default)]
    pub typos: Option<bool>,
    #[serde(default)]
    pub negation: Option<bool>,
}

/// `templates.toml`: every text the bot may send, per language.
pub type TemplatesFile = BTreeMap<String, Spanned<TemplateConfig>>;

/// Unknown keys are not refused by serde here (`other` takes them) but by the compiler, which
/// accepts only two-letter language codes there and names anything else.
#[derive(Debug, Deserialize)]
pub struct TemplateConfig {
    pub nl: Option<String>,
    pub en: Option<String>,
    /// Fills `{link}` in the texts.
    pub link: Option<String>,
    /// Texts in other languages, by ISO 639-1 code (`de = "…"`): used for customers who write
    /// in that language; without one they get Dutch and English.
    #[serde(flatten)]
    pub other: BTreeMap<String, String>,
}

/// `replies.toml`: the team's canned replies, by id.
pub type RepliesFile = BTreeMap<String, Spanned<ReplyConfig>>;

/// One canned reply (see `crate::replies`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyConfig {
    pub title_nl: String,
    pub title_en: String,
    pub nl: String,
    pub en: String,
    /// Offered to these teams only; left out: to every team.
    #[serde(default)]
    pub teams: Vec<Spanned<String>>,
}

/// `teams.toml`: who answers escalations, and when they work.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsFile {
    #[serde(default)]
    pub team: Vec<TeamConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    pub id: Spanned<String>,
    pub name: String,
    /// Name in English, for English holding replies; defaults to `name`.
    #[serde(default)]
    pub name_en: Option<String>,
    #[serde(default)]
    pub hours: HoursConfig,
    /// Dates (`2026-12-25`) the team is closed.
    #[serde(default)]
    pub holidays: Vec<Spanned<String>>,
    /// Minutes to the first human response, per priority: the promise in the holding reply
    /// and the SLA deadline of the escalation.
    #[serde(default)]
    pub sla: SlaConfig,
    /// Whether SLA minutes count only in office hours (`office`, the default) or always
    /// (`calendar`).
    #[serde(default)]
    pub sla_clock: Option<Spanned<String>>,
    /// Teams that take over, in order, each time the SLA is breached.
    #[serde(default)]
    pub chain: Vec<Spanned<String>>,
    /// The agents (login names) who work this team's queue.
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    pub urgent: u32,
    pub high: u32,
    pub normal: u32,
    pub low: u32,
}

impl Default for SlaConfig {
    fn default() -> Self {
        SlaConfig {
            urgent: 30,
            high: 120,
            normal: 240,
            low: 480,
        }
    }
}

/// Office hours per weekday as `"09:00-17:00"`, several ranges separated by commas; a missing
/// day is closed. `always = true` means the team is reachable around the clock.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursConfig {
    #[serde(default)]
    pub always: bool,
    pub mon: Option<Spanned<String>>,
    pub tue: Option<Spanned<String>>,
    pub wed: Option<Spanned<String>>,
    pub thu: Option<Spanned<String>>,
    pub fri: Option<Spanned<String>>,
    pub sat: Option<Spanned<String>>,
    pub sun: Option<Spanned<String>>,
}

/// `lexicon.toml`: the words behind sentiment and language detection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LexiconFile {
    pub sentiment: SentimentConfig,
    pub language: LanguageWordsConfig,
    /// For topics with `negation`: which words cancel the keyword after them.
    #[serde(default)]
    pub negation: Option<NegationConfig>,
    /// Named word lists that keywords use as `@name` (see [`super::groups`]).
    #[serde(default)]
    pub groups: super::groups::GroupsConfig,
    /// How people type a word in a chat; every keyword phrase also matches so (see
    /// [`super::shorthand`]).
    #[serde(default)]
    pub shorthand: super::shorthand::ShorthandConfig,
    /// Words known to be spelled right, so never read as a typo of a keyword.
    #[serde(default)]
    pub typos: TyposConfig,
    /// Endings after which a keyword inside a longer word is not that keyword.
    #[serde(default)]
    pub compounds: CompoundsConfig,
}

/// `[compounds]` in `lexicon.toml`: word endings that make another word of a keyword found
/// inside a longer one ("voorstel" + "ling" is a show, not a proposal).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompoundsConfig {
    #[serde(default)]
    pub endings: Vec<String>,
}

/// `[typos]` in `lexicon.toml`: real words one or two letters from a keyword ("vergissing",
/// a mistake, is not a misspelt "vermissing", a lost passport).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TyposConfig {
    #[serde(default)]
    pub real_words: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NegationConfig {
    pub negators: Vec<Spanned<String>>,
    /// Words that end a negation early ("maar", "but").
    #[serde(default)]
    pub enders: Vec<Spanned<String>>,
    /// How many words after a negator it reaches (default 3).
    #[serde(default)]
    pub reach: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentimentConfig {
    #[serde(default)]
    pub positive: Vec<Spanned<String>>,
    #[serde(default)]
    pub very_positive: Vec<Spanned<String>>,
    #[serde(default)]
    pub negative: Vec<Spanned<String>>,
    #[serde(default)]
    pub very_negative: Vec<Spanned<String>>,
    /// Words that flip the sentiment of the next two words ("niet goed", "not happy").
    #[serde(default)]
    pub negators: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageWordsConfig {
    pub nl: Vec<Spanned<String>>,
    pub en: Vec<Spanned<String>>,
    /// Frisian and Papiamento, which the language detector does not know (see
    /// [`crate::language::WORD_LISTED`]): only words those languages do not share with Dutch,
    /// English or Spanish.
    #[serde(default)]
    pub fy: Vec<Spanned<String>>,
    #[serde(default)]
    pub pap: Vec<Spanned<String>>,
}

/// `tests.toml`: golden cases, the rulebook's own unit tests.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestsFile {
    #[serde(default)]
    pub case: Vec<Spanned<CaseConfig>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub text: String,
    /// Local time in the rulebook's time zone, `2026-11-23 10:00`; default Monday 10:00.
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub crisis_mode: Option<bool>,
    #[serde(default)]
    pub conversation: Option<ConversationCaseConfig>,
    pub expect: ExpectConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConversationCaseConfig {
    pub state: Option<String>,
    pub messages_today: i64,
    pub auto_replies: i64,
    pub complaints_24h: i64,
    pub complaints_7d: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectConfig {
    pub action: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    /// The primary (first) topic.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    /// Text the reply must contain, case-insensitively.
    #[serde(default)]
    pub reply_contains: Option<String>,
}
