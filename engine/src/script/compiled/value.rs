//! The values a compiled script computes with, and every operation on them: Rhai's operators,
//! the properties of the engine's script types and the functions a script may call, each
//! written out once as plain Rust over a plain enum instead of being looked up by name and
//! type in Rhai's function tables on every call.
//!
//! Each operation does what Rhai does for the types it handles (the same string for
//! `"x" + 12`, the same `to_int`, string lengths in characters) and answers [`Flow::Bail`] for
//! anything else: a type mix, an overflow, a value near a size limit. A bail is never an
//! answer: the run is repeated by Rhai, which gives its own result or error.

use std::sync::Arc;

use rhai::ImmutableString;

use super::Frame;
use crate::script::api::{describe_teams, host_contains_any, host_shorten, host_starts_with_any};
use crate::script::{FactsInner, GuessView, TopicGuessView, Verdict, VerdictAction};

/// A value in a compiled run. The message, conversation and teams are the run's own (there is
/// one of each), so they need no payload; nor do the message's guesses and features, which are
/// read from the message when a script asks what they say. A value is copied on every read of a
/// variable and returned from every step, so it is kept to three words without a count to keep.
#[derive(Debug, Clone, Default)]
pub(super) enum Value {
    #[default]
    Unit,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(ImmutableString),
    Array(Arc<[Value]>),
    /// Shared, and copied only when a script changes a field (`d.template = …`): a variable's
    /// value semantics at the cost of a pointer.
    Verdict(Arc<Verdict>),
    Message,
    /// `msg.topic_guess`: read from the message the first time a script asks.
    TopicReading,
    Conversation,
    Teams,
    Guess(GuessOf),
    Features,
}

/// Which of the message's guesses a [`Value::Guess`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GuessOf {
    /// `msg.guess`
    Whole,
    /// `msg.critical_guess`
    Critical,
}

pub(super) fn guess_view<'a>(frame: &Frame<'a>, of: GuessOf) -> &'a GuessView {
    let m: &'a FactsInner = &frame.inputs.msg.0;
    match of {
        GuessOf::Whole => &m.guess,
        GuessOf::Critical => &m.critical_guess,
    }
}

/// Why a compiled run stopped early: a `return`, or something it leaves to Rhai.
#[derive(Debug)]
pub(super) enum Flow {
    Return(Value),
    Bail,
}

pub(super) type Outcome = Result<Value, Flow>;

pub(super) fn bail<T>() -> Result<T, Flow> {
    Err(Flow::Bail)
}

impl Value {
    pub(super) fn as_bool(&self) -> Result<bool, Flow> {
        match self {
            Value::Bool(b) => Ok(*b),
            _ => bail(),
        }
    }

    fn as_str(&self) -> Result<&ImmutableString, Flow> {
        match self {
            Value::Str(s) => Ok(s),
            _ => bail(),
        }
    }
}

/// A string or array as Rhai would hold it, or a bail when Rhai's size check might refuse it
/// (its check counts bytes; this one bails from the limit on, to be safe at the edge).
pub(super) fn sized(frame: &Frame<'_>, value: Value) -> Outcome {
    match &value {
        Value::Str(s) if s.len() >= frame.limits.max_string_size => bail(),
        Value::Array(a) => {
            let bytes: usize = a
                .iter()
                .map(|v| match v {
                    Value::Str(s) => s.len(),
                    _ => 0,
                })
                .sum();
            if a.len() >= frame.limits.max_array_size || bytes >= frame.limits.max_string_size {
                bail()
            } else {
                Ok(value)
            }
        }
        _ => Ok(value),
    }
}

/// A string array from the message (`msg.topics`).
fn strings(list: &[ImmutableString]) -> Value {
    Value::Array(list.iter().map(|s| Value::Str(s.clone())).collect())
}

/// Rhai's binary operators, resolved by name when the script compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// Whether it compares (its answer is a `bool`).
    pub(super) fn compares(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    pub(super) fn of(name: &str) -> Option<Op> {
        Some(match name {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Rem,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            _ => return None,
        })
    }
}

/// How Rhai prints a number that is added to a string (`"… " + 42 + "%"`).
pub(super) fn print_number(value: &Value) -> Option<String> {
    match value {
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(rhai::FloatWrapper::new(*f).to_string()),
        _ => None,
    }
}

fn compared<T: PartialOrd>(op: Op, a: T, b: T) -> Result<bool, Flow> {
    Ok(match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
        _ => return bail(),
    })
}

fn compare<T: PartialOrd>(op: Op, a: T, b: T) -> Outcome {
    compared(op, a, b).map(Value::Bool)
}

/// `a op b` for a comparison `op`, as [`binary`] answers it, numbers compared without making
/// a value of the answer.
pub(super) fn holds(frame: &Frame<'_>, op: Op, a: &Value, b: &Value) -> Result<bool, Flow> {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => compared(op, *x, *y),
        #[allow(clippy::cast_precision_loss)] // as in `binary`
        (Value::Int(x), Value::Float(y)) => compared(op, *x as f64, *y),
        #[allow(clippy::cast_precision_loss)]
        (Value::Float(x), Value::Int(y)) => compared(op, *x, *y as f64),
        (Value::Int(x), Value::Int(y)) => compared(op, *x, *y),
        _ => binary(frame, op, a, b)?.as_bool(),
    }
}

fn float_op(op: Op, a: f64, b: f64) -> Outcome {
    match op {
        Op::Add => Ok(Value::Float(a + b)),
        Op::Sub => Ok(Value::Float(a - b)),
        Op::Mul => Ok(Value::Float(a * b)),
        // Rhai divides floats as Rust does; a zero divisor is left to it all the same.
        Op::Div | Op::Rem if b == 0.0 => bail(),
        Op::Div => Ok(Value::Float(a / b)),
        Op::Rem => Ok(Value::Float(a % b)),
        _ => compare(op, a, b),
    }
}

/// `a op b` as Rhai's built-in operators compute it for numbers, strings and booleans.
pub(super) fn binary(frame: &Frame<'_>, op: Op, a: &Value, b: &Value) -> Outcome {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => {
            let (x, y) = (*x, *y);
            let result = match op {
                // Rhai reports an overflow or a zero divisor as an error: left to it.
                Op::Add => x.checked_add(y),
                Op::Sub => x.checked_sub(y),
                Op::Mul => x.checked_mul(y),
                Op::Div => x.checked_div(y),
                Op::Rem => x.checked_rem(y),
                _ => return compare(op, x, y),
            };
            result.map(Value::Int).ok_or(Flow::Bail)
        }
        #[allow(clippy::cast_precision_loss)] // Rhai converts the same way (`as FLOAT`).
        (Value::Int(x), Value::Float(y)) => float_op(op, *x as f64, *y),
        #[allow(clippy::cast_precision_loss)]
        (Value::Float(x), Value::Int(y)) => float_op(op, *x, *y as f64),
        (Value::Float(x), Value::Float(y)) => float_op(op, *x, *y),
        (Value::Str(x), Value::Str(y)) => match op {
            Op::Add => sized(frame, Value::Str(x + y)),
            Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge => compare(op, x.as_str(), y),
            _ => bail(),
        },
        (Value::Str(x), other) if op == Op::Add => match print_number(other) {
            Some(n) => sized(frame, Value::Str(format!("{x}{n}").into())),
            None => bail(),
        },
        (other, Value::Str(y)) if op == Op::Add => match print_number(other) {
            Some(n) => sized(frame, Value::Str(format!("{n}{y}").into())),
            None => bail(),
        },
        (Value::Bool(x), Value::Bool(y)) => match op {
            Op::Eq => Ok(Value::Bool(x == y)),
            Op::Ne => Ok(Value::Bool(x != y)),
            _ => bail(),
        },
        _ => bail(),
    }
}

/// `!x` and `-x`.
pub(super) fn not(value: &Value) -> Outcome {
    value.as_bool().map(|b| Value::Bool(!b))
}

pub(super) fn negate(value: &Value) -> Outcome {
    match value {
        Value::Int(i) => i.checked_neg().map(Value::Int).ok_or(Flow::Bail),
        Value::Float(f) => Ok(Value::Float(-f)),
        _ => bail(),
    }
}

/// The properties of the engine's script types (see `register_api`), by name; which type's
/// property it is depends on the value it is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prop {
    Id,
    Text,
    Normalized,
    Channel,
    Language,
    Category,
    Topic,
    Topics,
    Categories,
    Template,
    Team,
    Sentiment,
    SentimentScore,
    Hour,
    Minute,
    Weekday,
    Lang,
    LangName,
    LangSupported,
    Guess,
    CriticalGuess,
    WordCount,
    Features,
    TopicGuess,
    Score,
    Words,
    Chars,
    Urls,
    Emails,
    Phones,
    Amounts,
    Emoji,
    PositiveEmoji,
    NegativeEmoji,
    QuestionMarks,
    ExclamationMarks,
    CapsWords,
    AllCaps,
    State,
    HumanOwned,
    MessagesToday,
    AutoReplies,
    Complaints24h,
    Complaints7d,
    Action,
    Priority,
    Reply,
    Reason,
}

impl Prop {
    pub(super) fn of(name: &str) -> Option<Prop> {
        use Prop::*;
        Some(match name {
            "id" => Id,
            "text" => Text,
            "normalized" => Normalized,
            "channel" => Channel,
            "language" => Language,
            "category" => Category,
            "topic" => Topic,
            "topics" => Topics,
            "categories" => Categories,
            "template" => Template,
            "team" => Team,
            "sentiment" => Sentiment,
            "sentiment_score" => SentimentScore,
            "hour" => Hour,
            "minute" => Minute,
            "weekday" => Weekday,
            "lang" => Lang,
            "lang_name" => LangName,
            "lang_supported" => LangSupported,
            "guess" => Guess,
            "critical_guess" => CriticalGuess,
            "word_count" => WordCount,
            "features" => Features,
            "topic_guess" => TopicGuess,
            "score" => Score,
            "words" => Words,
            "chars" => Chars,
            "urls" => Urls,
            "emails" => Emails,
            "phones" => Phones,
            "amounts" => Amounts,
            "emoji" => Emoji,
            "positive_emoji" => PositiveEmoji,
            "negative_emoji" => NegativeEmoji,
            "question_marks" => QuestionMarks,
            "exclamation_marks" => ExclamationMarks,
            "caps_words" => CapsWords,
            "all_caps" => AllCaps,
            "state" => State,
            "human_owned" => HumanOwned,
            "messages_today" => MessagesToday,
            "auto_replies" => AutoReplies,
            "complaints_24h" => Complaints24h,
            "complaints_7d" => Complaints7d,
            "action" => Action,
            "priority" => Priority,
            "reply" => Reply,
            "reason" => Reason,
            _ => return None,
        })
    }

    /// The `Decision` fields a script may set, with the name `adjusted` records.
    pub(super) fn settable(self) -> Option<&'static str> {
        Some(match self {
            Prop::Team => "team",
            Prop::Priority => "priority",
            Prop::Template => "template",
            Prop::Reply => "reply",
            Prop::Category => "category",
            _ => return None,
        })
    }
}

/// How to read the message's string `msg.<prop>`, chosen when the script compiles.
pub(super) type Field = for<'m> fn(&'m FactsInner) -> &'m ImmutableString;

/// The reader of the message's string `msg.<prop>`; `None` when it is not one of its strings.
pub(super) fn message_field(prop: Prop) -> Option<Field> {
    let field: Field = match prop {
        Prop::Id => |m| m.id.shared(),
        Prop::Text => |m| m.text.shared(),
        Prop::Normalized => |m| m.normalized.shared(),
        Prop::Channel => |m| &m.channel,
        Prop::Language => |m| &m.language,
        Prop::Category => |m| &m.category,
        Prop::Topic => |m| &m.topic,
        Prop::Template => |m| &m.topic_template,
        Prop::Team => |m| &m.topic_team,
        Prop::Sentiment => |m| &m.sentiment,
        Prop::Weekday => |m| &m.weekday,
        Prop::Lang => |m| &m.lang,
        Prop::LangName => |m| &m.lang_name,
        _ => return None,
    };
    Some(field)
}

/// The message's string `msg.<prop>`, borrowed; `None` when it is not one of its strings.
pub(super) fn message_str<'a>(frame: &Frame<'a>, prop: Prop) -> Option<&'a ImmutableString> {
    message_field(prop).map(|field| field(&frame.inputs.msg.0))
}

/// `msg.<prop>`, read straight from the message's fields.
pub(super) fn message_prop(frame: &Frame<'_>, prop: Prop) -> Outcome {
    if let Some(s) = message_str(frame, prop) {
        return sized(frame, Value::Str(s.clone()));
    }
    let m: &FactsInner = &frame.inputs.msg.0;
    match prop {
        Prop::Topics => sized(frame, strings(&m.topics)),
        Prop::Categories => sized(frame, strings(&m.categories)),
        Prop::SentimentScore => Ok(Value::Int(m.sentiment_score)),
        Prop::Hour => Ok(Value::Int(m.hour)),
        Prop::Minute => Ok(Value::Int(m.minute)),
        Prop::LangSupported => Ok(Value::Bool(m.lang_supported)),
        Prop::Guess => Ok(Value::Guess(GuessOf::Whole)),
        Prop::CriticalGuess => Ok(Value::Guess(GuessOf::Critical)),
        Prop::WordCount => Ok(Value::Int(m.word_count)),
        Prop::Features => Ok(Value::Features),
        Prop::TopicGuess => Ok(Value::TopicReading),
        _ => bail(),
    }
}

fn topic_view<'a>(frame: &Frame<'a>) -> &'a TopicGuessView {
    frame.inputs.msg.0.topic_view()
}

/// The string `value.<prop>` holds, borrowed where it is kept (the message's inputs, or the
/// value itself), for a read that only compares it; `None` when the property is not one of the
/// value's strings.
pub(super) fn str_prop<'v>(
    frame: &'v Frame<'_>,
    value: &'v Value,
    prop: Prop,
) -> Option<&'v ImmutableString> {
    match value {
        Value::Message => message_str(frame, prop),
        Value::Guess(of) => {
            let g = guess_view(frame, *of);
            match prop {
                Prop::Category => Some(&g.category),
                Prop::Words => Some(&g.words),
                _ => None,
            }
        }
        Value::TopicReading => match prop {
            Prop::Topic => Some(&topic_view(frame).topic),
            Prop::Words => Some(&topic_view(frame).words),
            _ => None,
        },
        Value::Conversation => match prop {
            Prop::State => Some(&frame.inputs.conversation.state),
            _ => None,
        },
        Value::Verdict(v) => match prop {
            Prop::Action => Some(&ACTIONS[v.action as usize]),
            Prop::Team => Some(&v.team),
            Prop::Priority => Some(&v.priority),
            Prop::Template => Some(&v.template),
            Prop::Reply => Some(&v.reply),
            Prop::Category => Some(&v.category),
            Prop::Reason => Some(&v.reason),
            _ => None,
        },
        _ => None,
    }
}

/// `value.<prop>` for a value whose type is known only when the script runs.
pub(super) fn get(frame: &Frame<'_>, value: &Value, prop: Prop) -> Outcome {
    if let Some(s) = str_prop(frame, value, prop) {
        // `decision.action` is not checked against the size limit: a registered getter's
        // interned string, as under Rhai.
        return if matches!((value, prop), (Value::Verdict(_), Prop::Action)) {
            Ok(Value::Str(s.clone()))
        } else {
            sized(frame, Value::Str(s.clone()))
        };
    }
    match value {
        Value::Message => message_prop(frame, prop),
        Value::Guess(of) => match prop {
            Prop::Score => Ok(Value::Float(guess_view(frame, *of).score)),
            _ => bail(),
        },
        Value::TopicReading => match prop {
            Prop::Score => Ok(Value::Float(topic_view(frame).score)),
            _ => bail(),
        },
        Value::Features => {
            let f = &frame.inputs.msg.0.features_view().0;
            let n = match prop {
                Prop::Chars => f.chars,
                Prop::Words => f.words,
                Prop::Urls => f.urls,
                Prop::Emails => f.emails,
                Prop::Phones => f.phones,
                Prop::Amounts => f.amounts,
                Prop::Emoji => f.emoji,
                Prop::PositiveEmoji => f.positive_emoji,
                Prop::NegativeEmoji => f.negative_emoji,
                Prop::QuestionMarks => f.question_marks,
                Prop::ExclamationMarks => f.exclamation_marks,
                Prop::CapsWords => f.caps_words,
                Prop::AllCaps => return Ok(Value::Bool(f.all_caps)),
                _ => return bail(),
            };
            Ok(Value::Int(i64::from(n)))
        }
        Value::Conversation => {
            let c = &frame.inputs.conversation;
            match prop {
                Prop::HumanOwned => Ok(Value::Bool(c.state.as_str() == "human")),
                Prop::MessagesToday => Ok(Value::Int(c.messages_today)),
                Prop::AutoReplies => Ok(Value::Int(c.auto_replies)),
                Prop::Complaints24h => Ok(Value::Int(c.complaints_24h)),
                Prop::Complaints7d => Ok(Value::Int(c.complaints_7d)),
                _ => bail(),
            }
        }
        _ => bail(),
    }
}

/// `decision.action`, made once: governance reads it on every message.
static ACTIONS: std::sync::LazyLock<[ImmutableString; 3]> = std::sync::LazyLock::new(|| {
    [
        VerdictAction::Answer,
        VerdictAction::Escalate,
        VerdictAction::Log,
    ]
    .map(|a| a.as_str().into())
});

/// `d.<field> = value` on a decision, recording the line like the registered setters do.
pub(super) fn set(target: &mut Value, prop: Prop, value: Value, rule: &str) -> Result<(), Flow> {
    let (Value::Verdict(v), Value::Str(x), Some(name)) = (target, value, prop.settable()) else {
        return bail();
    };
    let v = Arc::make_mut(v);
    match prop {
        Prop::Team => v.team = x,
        Prop::Priority => v.priority = x,
        Prop::Template => v.template = x,
        Prop::Reply => v.reply = x,
        Prop::Category => v.category = x,
        _ => return bail(),
    }
    v.adjusted = Some((rule.to_owned(), name));
    Ok(())
}

/// The functions a compiled script may call, by name and number of arguments; as in Rhai, a
/// method call `a.f(b)` is `f(a, b)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Native {
    Escalate,
    Answer,
    LogOnly,
    ContainsAny,
    StartsWithAny,
    Shorten,
    Len,
    Contains,
    ToInt,
    Probability,
    Says,
    Knows,
    HasTopic,
    HasCategory,
    CategoriesIn,
    Exists,
    IsOpen,
    ClosedToday,
    NextOpen,
}

impl Native {
    pub(super) fn of(name: &str, arity: usize) -> Option<Native> {
        use Native::*;
        Some(match (name, arity) {
            ("escalate", 3) => Escalate,
            ("answer", 2) => Answer,
            ("log_only", 1) => LogOnly,
            ("contains_any", 2) => ContainsAny,
            ("starts_with_any", 2) => StartsWithAny,
            ("shorten", 2) => Shorten,
            ("len", 1) => Len,
            ("contains", 2) => Contains,
            ("to_int", 1) => ToInt,
            ("probability", 2) => Probability,
            ("says", 3) => Says,
            ("knows", 2) => Knows,
            ("has_topic", 2) => HasTopic,
            ("has_category", 2) => HasCategory,
            ("categories_in", 2) => CategoriesIn,
            ("exists", 2) => Exists,
            ("is_open", 2) => IsOpen,
            ("closed_today", 2) => ClosedToday,
            ("next_open", 2) => NextOpen,
            _ => return None,
        })
    }

    /// Whether it makes a decision, and so needs the line it is called on.
    pub(super) fn decides(self) -> bool {
        matches!(self, Native::Escalate | Native::Answer | Native::LogOnly)
    }
}

fn probability(probabilities: &[(impl AsRef<str>, f64)], c: &str) -> f64 {
    probabilities
        .iter()
        .find(|(name, _)| name.as_ref() == c)
        .map_or(0.0, |(_, p)| *p)
}

fn is_in(list: &[ImmutableString], id: &str) -> bool {
    list.iter().any(|t| t.as_str() == id)
}

/// `msg.has_topic(id)`, or with `topics` false `msg.has_category(id)`.
pub(super) fn has(frame: &Frame<'_>, topics: bool, id: &str) -> bool {
    let m = &frame.inputs.msg.0;
    is_in(if topics { &m.topics } else { &m.categories }, id)
}

/// `guess.says(category, min)`.
pub(super) fn says(
    frame: &Frame<'_>,
    guess: &Value,
    category: &str,
    min: f64,
) -> Result<bool, Flow> {
    match guess {
        Value::Guess(of) => {
            let g = guess_view(frame, *of);
            Ok(g.category.as_str() == category && g.score >= min)
        }
        _ => bail(),
    }
}

fn verdict(action: VerdictAction, rule: &str, reason: &Value) -> Result<Verdict, Flow> {
    Ok(Verdict::at(
        rule.to_owned(),
        action,
        reason.as_str()?.clone(),
    ))
}

/// `x.len()`: a string's length in characters, an array's in items.
pub(super) fn length(value: &Value) -> Outcome {
    match value {
        Value::Str(s) => Ok(Value::Int(
            i64::try_from(s.chars().count()).unwrap_or(i64::MAX),
        )),
        Value::Array(a) => Ok(Value::Int(i64::try_from(a.len()).unwrap_or(0))),
        _ => bail(),
    }
}

/// Calls `native` with `args` (already counted against the operation limit by the caller,
/// except for the work that grows with an argument's length, which is counted here).
pub(super) fn call(frame: &mut Frame<'_>, native: Native, rule: &str, args: &[&Value]) -> Outcome {
    let arg = |i: usize| args.get(i).copied().ok_or(Flow::Bail);
    let inputs = frame.inputs;
    let m: &FactsInner = &inputs.msg.0;
    match (native, arg(0)?) {
        (Native::Escalate, team) => {
            let mut v = verdict(VerdictAction::Escalate, rule, arg(2)?)?;
            v.team = team.as_str()?.clone();
            v.priority = arg(1)?.as_str()?.clone();
            Ok(Value::Verdict(Arc::new(v)))
        }
        (Native::Answer, template) => {
            let mut v = verdict(VerdictAction::Answer, rule, arg(1)?)?;
            v.template = template.as_str()?.clone();
            Ok(Value::Verdict(Arc::new(v)))
        }
        (Native::LogOnly, reason) => Ok(Value::Verdict(Arc::new(verdict(
            VerdictAction::Log,
            rule,
            reason,
        )?))),
        (Native::ContainsAny | Native::StartsWithAny, Value::Str(text)) => {
            let Value::Array(words) = arg(1)? else {
                return bail();
            };
            let words = words
                .iter()
                .map(|w| w.as_str().map(ImmutableString::as_str))
                .collect::<Result<Vec<&str>, Flow>>()?;
            let found = if native == Native::ContainsAny {
                host_contains_any(text, &words)
            } else {
                host_starts_with_any(text, &words)
            };
            found.map(Value::Bool).map_err(|_| Flow::Bail)
        }
        (Native::Shorten, Value::Str(text)) => match arg(1)? {
            Value::Int(limit) => host_shorten(text.clone(), *limit)
                .map_err(|_| Flow::Bail)
                .and_then(|s| sized(frame, Value::Str(s))),
            _ => bail(),
        },
        (Native::Len, v) => length(v),
        (Native::Contains, Value::Array(a)) => {
            // Rhai compares each element with `==`, one operation each.
            frame.charge(4 * a.len() as u64)?;
            let x = arg(1)?.as_str()?;
            let mut found = false;
            for v in a.iter() {
                found |= v.as_str()? == x;
            }
            Ok(Value::Bool(found))
        }
        (Native::Contains, Value::Str(s)) => {
            Ok(Value::Bool(s.contains(arg(1)?.as_str()?.as_str())))
        }
        (Native::ToInt, Value::Int(i)) => Ok(Value::Int(*i)),
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        (Native::ToInt, Value::Float(x)) => {
            // Rhai's `f64_to_int`: an error out of range (left to it), else truncated.
            if *x > i64::MAX as f64 || *x < i64::MIN as f64 {
                bail()
            } else {
                Ok(Value::Int(x.trunc() as i64))
            }
        }
        (Native::Probability, Value::Guess(of)) => Ok(Value::Float(probability(
            &guess_view(frame, *of).probabilities,
            arg(1)?.as_str()?,
        ))),
        (Native::Probability, Value::TopicReading) => Ok(Value::Float(probability(
            &topic_view(frame).probabilities,
            arg(1)?.as_str()?,
        ))),
        (Native::Says, Value::Guess(of)) => match (arg(1)?, arg(2)?) {
            (Value::Str(c), Value::Float(min)) => {
                says(frame, &Value::Guess(*of), c, *min).map(Value::Bool)
            }
            _ => bail(),
        },
        (Native::Knows, Value::TopicReading) => {
            let t = arg(1)?.as_str()?;
            Ok(Value::Bool(
                m.classifier.as_deref().is_some_and(|c| c.knows_topic(t)),
            ))
        }
        (Native::HasTopic, Value::Message) => Ok(Value::Bool(has(frame, true, arg(1)?.as_str()?))),
        (Native::HasCategory, Value::Message) => {
            Ok(Value::Bool(has(frame, false, arg(1)?.as_str()?)))
        }
        (Native::CategoriesIn, Value::Message) => {
            let Value::Array(list) = arg(1)? else {
                return bail();
            };
            // The registered function keeps the strings among `list` that are categories.
            let kept: Vec<Value> = list
                .iter()
                .filter(|c| matches!(c, Value::Str(c) if is_in(&m.categories, c)))
                .cloned()
                .collect();
            sized(frame, Value::Array(kept.into()))
        }
        (
            Native::Exists | Native::IsOpen | Native::ClosedToday | Native::NextOpen,
            Value::Teams,
        ) => {
            let id = arg(1)?.as_str()?;
            let t = &inputs.teams;
            Ok(match native {
                Native::Exists => Value::Bool(t.teams.get(id).is_some()),
                Native::IsOpen => {
                    Value::Bool(t.teams.get(id).is_some_and(|team| team.is_open(t.at)))
                }
                Native::ClosedToday => Value::Bool(
                    t.teams
                        .get(id)
                        .is_some_and(|team| team.closed_all_day(t.at)),
                ),
                _ => return sized(frame, Value::Str(describe_teams(t, id))),
            })
        }
        _ => bail(),
    }
}
