//! The two Rhai scripts a governance lead owns: `escalation.rhai` proposes what to do with a
//! message, `governance.rhai` reviews every proposal before it takes effect.
//!
//! Scripts are untrusted in the sense that matters: a typo, an endless loop or a huge string in
//! a script must never take the service down or send a wrong answer. So the Rhai engine here is
//! built raw (no file access, no module resolver, no `eval`, no clock) with every limit set
//! explicitly, because Rhai's defaults differ between debug and release builds. Any error is
//! returned as a [`ScriptError`] with its line, and the pipeline turns it into a fail-safe
//! escalation. Scripts compile once when the rulebook loads.
//!
//! `api` registers what scripts can call and read; `compiled` turns a script that uses only the
//! common constructs into Rust closures that decide exactly as Rhai does, for speed; `names`
//! checks every name a script uses when the rulebook loads.

use std::fmt;
use std::sync::Arc;

use chrono::DateTime;
use chrono_tz::Tz;
use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicMapPackage, BasicMathPackage, BasicStringPackage,
    CorePackage, LogicPackage, MoreStringPackage, Package,
};
use rhai::{AST, EvalAltResult, ImmutableString, NativeCallContext, Position, Scope};

use crate::decision::Language;
use crate::rulebook::config::ScriptLimitsConfig;
use crate::rulebook::error::{Location, RulebookError};
use crate::rulebook::source::SourceFile;
use crate::teams::Teams;

mod api;
mod compiled;
mod names;

use api::{HOST_WORK, register_api, register_types};

/// What a script returns; a governance lead knows it as a "decision".
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub action: VerdictAction,
    pub team: ImmutableString,
    pub priority: ImmutableString,
    /// The answer template, or the holding-reply template of an escalation (empty: the default).
    pub template: ImmutableString,
    /// The rendered answer; filled by the engine before the governance script sees it.
    pub reply: ImmutableString,
    pub reason: ImmutableString,
    /// Where the script made this verdict, `escalation.rhai:12`.
    pub rule: String,
    /// The template `reply` was rendered from, so a changed template is rendered again.
    pub rendered_from: ImmutableString,
    /// Where a script last changed a field of an existing verdict (`governance.rhai:30`), and
    /// which field: a review that adjusts rather than replaces still names its rule.
    pub adjusted: Option<(String, &'static str)>,
    /// The category the decision is filed under when a script says so (`d.category =
    /// "press"`), e.g. from the classifier's guess where no keyword matched; empty keeps the
    /// category of the matched topics.
    pub category: ImmutableString,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictAction {
    Answer,
    Escalate,
    Log,
}

impl VerdictAction {
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictAction::Answer => "answer",
            VerdictAction::Escalate => "escalate",
            VerdictAction::Log => "log",
        }
    }
}

/// `escalation.rhai:12` for the script line that called a native function.
fn rule_at(ctx: &NativeCallContext) -> String {
    let source = ctx.call_source().unwrap_or("script");
    match ctx.call_position().line() {
        Some(line) => format!("{source}:{line}"),
        None => source.to_owned(),
    }
}

/// The empty script string, made once and shared. `ImmutableString::new()` allocates a
/// buffer of its own every time, and a verdict is made with six fields that are mostly
/// empty: six allocations and frees a decision (an empty string is never changed in place,
/// so sharing one is the same value).
pub(crate) fn empty_string() -> ImmutableString {
    static EMPTY: std::sync::LazyLock<ImmutableString> =
        std::sync::LazyLock::new(ImmutableString::new);
    EMPTY.clone()
}

impl Verdict {
    fn new(ctx: &NativeCallContext, action: VerdictAction, reason: ImmutableString) -> Self {
        Verdict::at(rule_at(ctx), action, reason)
    }

    /// A verdict made at `rule` (`escalation.rhai:12`).
    fn at(rule: String, action: VerdictAction, reason: ImmutableString) -> Self {
        Verdict {
            action,
            team: empty_string(),
            priority: empty_string(),
            template: empty_string(),
            reply: empty_string(),
            reason,
            rule,
            rendered_from: empty_string(),
            adjusted: None,
            category: empty_string(),
        }
    }

    /// Whether a review changed what happens (not merely the wording of the reason).
    pub fn differs_from(&self, other: &Verdict) -> bool {
        // A review that lets the proposal through returns its copy, whose strings are the
        // proposal's own: compared by pointer first, the reply is not read byte by byte.
        let differ = |a: &ImmutableString, b: &ImmutableString| !a.ptr_eq(b) && a != b;
        self.action != other.action
            || differ(&self.team, &other.team)
            || differ(&self.priority, &other.priority)
            || differ(&self.template, &other.template)
            || differ(&self.reply, &other.reply)
            || differ(&self.category, &other.category)
    }
}

/// What the scripts know about the message, read as `msg.text`, `msg.topic`, ….
#[derive(Debug, Clone)]
pub struct MessageFacts(pub Arc<FactsInner>);

#[derive(Debug)]
pub struct FactsInner {
    pub id: Text,
    pub text: Text,
    pub normalized: Text,
    pub channel: ImmutableString,
    pub language: ImmutableString,
    pub category: ImmutableString,
    pub topic: ImmutableString,
    /// The topic ids and the categories of the keyword topics, strongest first; a script reads
    /// them as arrays (`msg.topics`) or asks about one (`msg.has_topic("…")`).
    pub topics: Vec<ImmutableString>,
    pub categories: Vec<ImmutableString>,
    pub topic_template: ImmutableString,
    pub topic_team: ImmutableString,
    pub sentiment: ImmutableString,
    pub sentiment_score: i64,
    pub hour: i64,
    pub minute: i64,
    pub weekday: ImmutableString,
    /// The language the message is written in, ISO 639-1 (`de`), and its English name.
    pub lang: ImmutableString,
    pub lang_name: ImmutableString,
    /// Whether the templates speak it (Dutch or English, or a template text in it).
    pub lang_supported: bool,
    /// The classifier's guess for the whole message.
    pub guess: Arc<GuessView>,
    /// The most likely critical category anywhere in the message: over the whole text and
    /// each sentence, so a danger in the last sentence of a long letter is not averaged away.
    pub critical_guess: Arc<GuessView>,
    /// Computed the first time a script reads `msg.features`: most decisions never do.
    pub features: std::sync::OnceLock<FeaturesView>,
    /// The rulebook's classifier, for `msg.topic_guess`, which is likewise computed only when a
    /// script reads it (the default script does only when a keyword topic has an answer).
    pub classifier: Option<Arc<crate::classifier::Classifier>>,
    pub topic_guess: std::sync::OnceLock<TopicGuessView>,
    /// The words of `normalized` and their ids in the classifier's vocabulary, as the
    /// category guesses read them, kept for the topic guess (see [`crate::signals::guesses`]).
    pub words: Vec<(u32, u32)>,
    pub vocabulary: Vec<u32>,
    /// Words in the normalised text, cheap enough for every message.
    pub word_count: i64,
}

/// A text of the message as the engine has it, made a script string only when a script reads
/// it: a script string is a shared copy (an allocation for the count, another for a long
/// text), and the default scripts read none of the message's own texts.
#[derive(Debug)]
pub struct Text {
    text: String,
    shared: std::sync::OnceLock<ImmutableString>,
}

impl Text {
    pub fn new(text: String) -> Self {
        Text {
            text,
            shared: std::sync::OnceLock::new(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The text as scripts read it (`msg.text`).
    pub fn shared(&self) -> &ImmutableString {
        self.shared.get_or_init(|| self.text.as_str().into())
    }
}

/// `msg.guess`: the learned second opinion (see [`crate::classifier`]).
#[derive(Debug, Clone, Default)]
pub struct GuessView {
    /// Empty when the rulebook has no classifier.
    pub category: ImmutableString,
    pub score: f64,
    /// The few words that weighed most, `item, uitzending`.
    pub words: ImmutableString,
    /// Every category the classifier knows, with its probability.
    pub probabilities: Arc<[(&'static str, f64)]>,
}

/// `msg.topic_guess`: which topic the classifier reads a question or report as being about (see
/// [`crate::classifier::TopicGuess`]); `topic` is empty when the examples name too few topics.
#[derive(Debug, Clone, Default)]
pub struct TopicGuessView {
    pub topic: ImmutableString,
    pub score: f64,
    pub words: ImmutableString,
    pub probabilities: Arc<[(ImmutableString, f64)]>,
}

/// What a script holds after `let about = msg.topic_guess;`: the message, whose topic reading
/// is computed the first time a script asks what it says.
#[derive(Debug, Clone)]
pub struct TopicReading(MessageFacts);

impl TopicReading {
    fn view(&self) -> &TopicGuessView {
        self.0.0.topic_view()
    }
}

impl FactsInner {
    /// `msg.topic_guess`'s reading, computed the first time a script asks.
    fn topic_view(&self) -> &TopicGuessView {
        self.topic_guess.get_or_init(|| {
            crate::signals::topic_guess(
                self.classifier.as_deref(),
                self.normalized.as_str(),
                &self.words,
                &self.vocabulary,
            )
        })
    }

    /// `msg.features`, computed the first time a script reads them.
    fn features_view(&self) -> &FeaturesView {
        self.features
            .get_or_init(|| FeaturesView(crate::features::extract(self.text.as_str())))
    }
}

/// `msg.features`: facts about the text (see [`crate::features`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct FeaturesView(pub crate::features::TextFeatures);

/// Conversation facts (`conversation.state`, `conversation.complaints_24h`, …).
#[derive(Debug, Clone)]
pub struct ConversationView {
    pub state: ImmutableString,
    pub messages_today: i64,
    pub auto_replies: i64,
    pub complaints_24h: i64,
    pub complaints_7d: i64,
}

/// `teams.is_open("legal")`, `teams.next_open("legal")` at the message's time.
#[derive(Debug, Clone)]
pub struct TeamsView {
    pub teams: Arc<Teams>,
    pub at: DateTime<Tz>,
    pub language: Language,
}

/// The scripts' runs for one message: what they read, and the Rhai scope the runs share when
/// a script runs on Rhai.
pub struct ScriptRun<'a> {
    inputs: &'a ScriptInputs,
    scope: Option<Scope<'static>>,
}

impl<'a> ScriptRun<'a> {
    pub fn new(inputs: &'a ScriptInputs) -> Self {
        ScriptRun {
            inputs,
            scope: None,
        }
    }
}

/// Everything a script run can read.
pub struct ScriptInputs {
    pub msg: MessageFacts,
    pub conversation: ConversationView,
    pub teams: TeamsView,
    pub crisis_mode: bool,
    pub default_team: ImmutableString,
    /// The channel's reply limit in characters.
    pub reply_limit: i64,
}

/// A script failure, with the script position when Rhai knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    pub script: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "{}:{line}:{column}: {}", self.script, self.message)
            }
            (Some(line), None) => write!(f, "{}:{line}: {}", self.script, self.message),
            _ => write!(f, "{}: {}", self.script, self.message),
        }
    }
}

impl ScriptError {
    pub fn at_rule(rule: &str, message: impl Into<String>) -> Self {
        let (script, line) = match rule.rsplit_once(':') {
            Some((script, line)) => (script.to_owned(), line.parse().ok()),
            None => (rule.to_owned(), None),
        };
        ScriptError {
            script,
            line,
            column: None,
            message: message.into(),
        }
    }

    fn from_eval(script: &str, mut error: EvalAltResult) -> Self {
        let pos = error.take_position();
        let message = match error {
            EvalAltResult::ErrorTooManyOperations(_) => {
                "the script ran too long (operation limit reached; is there an endless loop?)"
                    .to_owned()
            }
            EvalAltResult::ErrorStackOverflow(_) => {
                "the script calls functions too deeply (call depth limit; endless recursion?)"
                    .to_owned()
            }
            EvalAltResult::ErrorDataTooLarge(what, _) => {
                format!("the script built a value that is too large ({what}; see script_limits)")
            }
            other => other.to_string(),
        };
        ScriptError {
            script: script.to_owned(),
            line: pos.line(),
            column: pos.position(),
            message,
        }
    }
}

struct Script {
    name: String,
    /// The name as the source Rhai reports in a native call (`escalation.rhai`).
    source: ImmutableString,
    ast: AST,
    /// How many statements at the start of `ast` only declare the engine's variables (see
    /// [`declared`]); a run skips them, since the scope already holds the values.
    declarations: usize,
    /// Columns the declarations add to line 1, taken off the column of an error there.
    line_one_shift: usize,
    /// Function-resolution caches kept between runs, one per thread deciding at the moment.
    /// Rhai resolves every call site (`msg.template`, `escalate(…)`) by searching the
    /// registered modules, and a fresh run starts with an empty cache: with these, a call is
    /// resolved once per thread and script, not once per message. A cache belongs to this
    /// compiled script and this engine, so a new rulebook starts with empty ones.
    caches: std::sync::Mutex<Vec<rhai::Caches>>,
    /// The script compiled to Rust closures, or why it runs on Rhai (see [`compiled`]).
    compiled: Result<compiled::Program, String>,
}

/// The sandboxed engine with both compiled scripts.
pub struct ScriptHost {
    engine: rhai::Engine,
    escalation: Script,
    governance: Script,
}

/// The stack a thread that decides messages needs: enough for the deepest script the
/// `[script_limits]` ranges allow (64 calls deep, expressions 128 deep), measured in a debug
/// build, where Rhai's frames are largest, with room to spare. Rhai recurses on the thread's
/// stack; on the 2 MiB threads a runtime starts by default such a script aborts the process.
/// Only the pages a script touches are ever used.
pub const DECIDE_STACK_BYTES: usize = 128 * 1024 * 1024;

/// The variables each script reads, with their Rhai type names (as registered in
/// [`register_types`]), so `check` can follow `msg.guess.score` to its type.
const ESCALATION_VARS: [(&str, &str); 5] = [
    ("msg", "Message"),
    ("conversation", "Conversation"),
    ("teams", "Teams"),
    ("crisis_mode", "bool"),
    ("default_team", "string"),
];
const GOVERNANCE_VARS: [(&str, &str); 2] = [("decision", "Decision"), ("reply_limit", "i64")];

/// The engine, and the names of the script types it registered.
fn sandboxed_engine(limits: &ScriptLimitsConfig) -> (rhai::Engine, Vec<&'static str>) {
    let mut engine = rhai::Engine::new_raw();
    // Only pure language packages: no time (decisions must replay identically), no I/O.
    engine.register_global_module(CorePackage::new().as_shared_module());
    engine.register_global_module(LogicPackage::new().as_shared_module());
    engine.register_global_module(ArithmeticPackage::new().as_shared_module());
    engine.register_global_module(BasicMathPackage::new().as_shared_module());
    engine.register_global_module(BasicStringPackage::new().as_shared_module());
    engine.register_global_module(MoreStringPackage::new().as_shared_module());
    engine.register_global_module(BasicArrayPackage::new().as_shared_module());
    engine.register_global_module(BasicMapPackage::new().as_shared_module());
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.set_max_modules(0);
    engine.disable_symbol("eval");
    // Refused at compile time, so `webcare check` reports an import instead of every message
    // failing at run time.
    engine.disable_symbol("import");
    engine.disable_symbol("export");
    engine.set_strict_variables(true);
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_depth);
    engine.set_max_expr_depths(limits.max_expression_depth, limits.max_expression_depth);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_max_variables(limits.max_variables);
    engine.set_max_functions(limits.max_functions);
    // Scripts never write to stdout (`webcare replay` output is a data stream), and what they
    // print never reaches the log: `print(msg.text)` would copy customer text into it, out of
    // reach of `forget` and retention. The log says only that, and where, a script printed.
    engine.on_print(|text| {
        tracing::debug!(target: "webcare::script", chars = text.chars().count(), "a script printed a line (not logged: it may hold customer text)")
    });
    engine.on_debug(|text, source, pos| {
        tracing::debug!(target: "webcare::script", source = source.unwrap_or("script"), %pos, chars = text.chars().count(), "a script called debug (not logged: it may hold customer text)")
    });
    let types = register_types(&mut engine);
    register_api(&mut engine);
    (engine, types)
}

/// The script compiled once more behind a line of declarations of the engine's variables
/// (`let msg;let conversation;…`), with how many columns that line adds to line 1.
///
/// Why: Rhai numbers a variable the script declares by its place in the scope when it
/// compiles, but finds a variable the engine put there (`msg`, `conversation`, …) by comparing
/// its name with every name in the scope, the script's own variables first, on every read. The
/// scripts read `msg` dozens of times a message, and that search was 7% of a decision. Declared
/// in the script, they are numbered like its own variables. The scope a run starts with holds
/// the same variables in the same order (see [`ScriptHost::scope`] and [`ScriptHost::review`]),
/// so the numbers point at them, and a run skips the declarations. `check` reads the script as
/// written; `None` (the script then runs as written, searched by name as before) when the
/// declared script does not compile or the declarations do not come out as its first
/// statements.
fn declared(
    engine: &rhai::Engine,
    scope: &Scope,
    file: &SourceFile,
    vars: &[(&str, &str)],
) -> Option<(AST, usize)> {
    let prefix: String = vars.iter().map(|(var, _)| format!("let {var};")).collect();
    let ast = engine
        .compile_with_scope(scope, format!("{prefix}{}", file.text))
        .ok()?;
    let declares = |stmt: &rhai::Stmt, var: &str| {
        matches!(stmt, rhai::Stmt::Var(x, ..) if x.0.name == var
            && matches!(x.1, rhai::Expr::Unit(..)))
    };
    let statements = ast.statements();
    (statements.len() >= vars.len()
        && statements
            .iter()
            .zip(vars)
            .all(|(stmt, (var, _))| declares(stmt, var)))
    .then_some((ast, prefix.len()))
}

fn compile(
    engine: &rhai::Engine,
    limits: &ScriptLimitsConfig,
    api: &names::Api,
    file: &SourceFile,
    vars: &[(&str, &str)],
) -> Result<Script, Vec<RulebookError>> {
    // Plain variables, not constants: the optimiser would inline a constant's placeholder
    // value into the AST. The names are only declared so strict mode can catch typos.
    let mut scope = Scope::new();
    for (var, _) in vars {
        scope.push(*var, ());
    }
    let name = file.path.file_name().map_or_else(
        || file.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    match engine.compile_with_scope(&scope, &file.text) {
        Ok(ast) => {
            // Rhai resolves names only when a message runs the script; resolving them here
            // lets `check` point at a misspelled function or property.
            let errors = api.check(file, &ast, vars);
            if !errors.is_empty() {
                return Err(errors);
            }
            let (mut ast, declarations, line_one_shift) = match declared(engine, &scope, file, vars)
            {
                Some((declared, shift)) => (declared, vars.len(), shift),
                None => (ast, 0, 0),
            };
            ast.set_source(name.as_str());
            let registered = |f: &str| api.registered(f);
            let compiled =
                compiled::Program::compile(&ast, declarations, &name, vars, limits, &registered);
            if let Err(why) = &compiled {
                tracing::debug!(target: "webcare::script", script = %name, "the script runs on Rhai: {why}");
            }
            Ok(Script {
                source: name.as_str().into(),
                name,
                ast,
                declarations,
                line_one_shift,
                caches: std::sync::Mutex::new(Vec::new()),
                compiled,
            })
        }
        Err(e) => {
            let pos: Position = e.position();
            Err(vec![RulebookError::invalid(
                Location {
                    file: file.path.clone(),
                    line: pos.line().unwrap_or(1),
                    column: pos.position().unwrap_or(1),
                },
                e.err_type().to_string(),
            )])
        }
    }
}

impl ScriptHost {
    pub fn compile(
        limits: &ScriptLimitsConfig,
        escalation: &SourceFile,
        governance: &SourceFile,
    ) -> Result<Self, Vec<RulebookError>> {
        let (engine, types) = sandboxed_engine(limits);
        let api = names::Api::of(&engine, &types);
        let governance_vars: Vec<(&str, &str)> = ESCALATION_VARS
            .iter()
            .chain(GOVERNANCE_VARS.iter())
            .copied()
            .collect();
        match (
            compile(&engine, limits, &api, escalation, &ESCALATION_VARS),
            compile(&engine, limits, &api, governance, &governance_vars),
        ) {
            (Ok(escalation), Ok(governance)) => Ok(ScriptHost {
                engine,
                escalation,
                governance,
            }),
            (a, b) => Err([a.err(), b.err()].into_iter().flatten().flatten().collect()),
        }
    }

    /// The variables both scripts read, for the Rhai runs of one message: the governance
    /// script runs in the same scope after the escalation script's own variables are dropped.
    /// In the order of [`ESCALATION_VARS`]: the compiled scripts find them by their place (see
    /// [`declared`]).
    fn scope(inputs: &ScriptInputs) -> Scope<'static> {
        let mut scope = Scope::with_capacity(32);
        scope.push_constant("msg", inputs.msg.clone());
        scope.push_constant("conversation", inputs.conversation.clone());
        scope.push_constant("teams", inputs.teams.clone());
        scope.push_constant("crisis_mode", inputs.crisis_mode);
        scope.push_constant("default_team", inputs.default_team.clone());
        scope
    }

    /// Runs `script`: compiled when it could be compiled and the compiled run finishes, else on
    /// Rhai, in the message's scope (made the first time a message needs it).
    fn run(
        &self,
        script: &Script,
        run: &mut ScriptRun<'_>,
        review: Option<(Verdict, i64)>,
    ) -> Result<Verdict, ScriptError> {
        if let Ok(program) = &script.compiled {
            HOST_WORK.with(|work| work.set((0, self.engine.max_operations())));
            if let Some(verdict) = program.run(run.inputs, review.clone()) {
                #[cfg(test)]
                compiled::tests::differential(self, script, run, review, &verdict);
                return Ok(verdict);
            }
            #[cfg(test)]
            compiled::tests::bailed();
        }
        self.run_rhai(script, run, review)
    }

    fn run_rhai(
        &self,
        script: &Script,
        run: &mut ScriptRun<'_>,
        review: Option<(Verdict, i64)>,
    ) -> Result<Verdict, ScriptError> {
        let inputs = run.inputs;
        let scope = run.scope.get_or_insert_with(|| ScriptHost::scope(inputs));
        scope.rewind(ESCALATION_VARS.len());
        if let Some((proposal, reply_limit)) = review {
            scope.push("decision", proposal);
            scope.push_constant("reply_limit", reply_limit);
        }
        self.eval(script, scope)
    }

    fn eval(&self, script: &Script, scope: &mut Scope) -> Result<Verdict, ScriptError> {
        HOST_WORK.with(|work| work.set((0, self.engine.max_operations())));
        let mut caches = script
            .caches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        // What `Engine::eval_ast_with_scope` does, with a cache that outlives the run.
        let mut global = self.engine.new_global_runtime_state();
        global.source = Some(script.source.clone());
        global.lib.push(script.ast.shared_lib().clone());
        // Deprecated in Rhai 1.12 "to be removed in the next major version", and the only way
        // to pass a cache in; a Rhai 2 upgrade must find another (the cost is in BENCHMARKS.md).
        #[allow(deprecated)]
        let result = self.engine.eval_statements_raw(
            &mut global,
            &mut caches,
            scope,
            &script.ast.statements()[script.declarations..],
        );
        // A failed run may have left a cache half rewound: it is dropped, not reused.
        if result.is_ok() {
            script
                .caches
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(caches);
        }
        let value = result.map_err(|e| {
            let mut error = ScriptError::from_eval(&script.name, *e);
            if error.line == Some(1) {
                error.column = error
                    .column
                    .map(|c| c.saturating_sub(script.line_one_shift));
            }
            error
        })?;
        let type_name = value.type_name();
        value.try_cast::<Verdict>().ok_or_else(|| ScriptError {
            script: script.name.clone(),
            line: None,
            column: None,
            message: format!(
                "the script must end with answer(…), escalate(…) or log_only(…), but it gave `{type_name}`"
            ),
        })
    }

    /// Runs `escalation.rhai` for the message of `run`: the proposed decision.
    pub fn propose(&self, run: &mut ScriptRun<'_>) -> Result<Verdict, ScriptError> {
        self.run(&self.escalation, run, None)
    }

    /// Runs `governance.rhai` on a proposal for the message of `run`: the reviewed decision.
    pub fn review(
        &self,
        run: &mut ScriptRun<'_>,
        reply_limit: i64,
        proposal: Verdict,
    ) -> Result<Verdict, ScriptError> {
        self.run(&self.governance, run, Some((proposal, reply_limit)))
    }

    /// Why each script runs on Rhai rather than compiled (`None`: it runs compiled).
    pub fn interpreted(&self) -> [(&str, Option<&str>); 2] {
        [&self.escalation, &self.governance].map(|s| {
            (
                s.name.as_str(),
                s.compiled.as_ref().err().map(String::as_str),
            )
        })
    }

    pub fn escalation_name(&self) -> &str {
        &self.escalation.name
    }

    pub fn governance_name(&self) -> &str {
        &self.governance.name
    }
}
