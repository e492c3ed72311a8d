//! What a script can call and read: the engine's script types and their properties, and the
//! functions a governance lead writes (`escalate`, `msg.has_topic`, `contains_any`, …),
//! registered on the Rhai engine. The host functions whose work grows with their input are
//! shared with the compiled scripts (see [`super::compiled`]), so both count it alike.

use std::borrow::Cow;
use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use rustc_hash::{FxHashMap, FxHasher};

use rhai::{Array, Dynamic, EvalAltResult, ImmutableString, NativeCallContext, Position};

use super::{
    ConversationView, FeaturesView, GuessView, MessageFacts, TeamsView, TopicReading, Verdict,
    VerdictAction, rule_at,
};
use crate::normalize::{ends_word, normalize, starts_word};
use crate::teams::describe_next_open;
use crate::templates::shorten;

/// The types scripts see, registered before any function that takes or returns one: the
/// function metadata `check` reads names a type by its Rhai name only once it is registered.
/// Returns their names.
pub(super) fn register_types(engine: &mut rhai::Engine) -> Vec<&'static str> {
    fn add<T: rhai::Variant + Clone>(
        engine: &mut rhai::Engine,
        names: &mut Vec<&'static str>,
        name: &'static str,
    ) {
        engine.register_type_with_name::<T>(name);
        names.push(name);
    }
    let mut names = Vec::new();
    add::<Verdict>(engine, &mut names, "Decision");
    add::<MessageFacts>(engine, &mut names, "Message");
    // A handle read lazily, and a shared guess: see `register_api`.
    add::<TopicReading>(engine, &mut names, "TopicGuess");
    add::<Arc<GuessView>>(engine, &mut names, "Guess");
    add::<FeaturesView>(engine, &mut names, "Features");
    add::<ConversationView>(engine, &mut names, "Conversation");
    add::<TeamsView>(engine, &mut names, "Teams");
    names
}

pub(super) fn register_api(engine: &mut rhai::Engine) {
    engine.register_fn(
        "answer",
        |ctx: NativeCallContext, template: ImmutableString, reason: ImmutableString| {
            let mut v = Verdict::new(&ctx, VerdictAction::Answer, reason);
            v.template = template;
            v
        },
    );
    engine.register_fn(
        "escalate",
        |ctx: NativeCallContext,
         team: ImmutableString,
         priority: ImmutableString,
         reason: ImmutableString| {
            let mut v = Verdict::new(&ctx, VerdictAction::Escalate, reason);
            v.team = team;
            v.priority = priority;
            v
        },
    );
    engine.register_fn(
        "log_only",
        |ctx: NativeCallContext, reason: ImmutableString| {
            Verdict::new(&ctx, VerdictAction::Log, reason)
        },
    );
    // Interned: governance reads `decision.action` on every message.
    let actions: [ImmutableString; 3] = [
        VerdictAction::Answer,
        VerdictAction::Escalate,
        VerdictAction::Log,
    ]
    .map(|a| a.as_str().into());
    engine.register_get("action", move |v: &mut Verdict| -> ImmutableString {
        actions[v.action as usize].clone()
    });
    // Setters are registered by hand (`set$name`) to get the call position, so an adjusted
    // verdict names the line that adjusted it.
    macro_rules! verdict_field {
        ($($name:literal => $field:ident),*) => {$(
            engine.register_get($name, |v: &mut Verdict| v.$field.clone());
            engine.register_fn(
                concat!("set$", $name),
                |ctx: NativeCallContext, v: &mut Verdict, x: ImmutableString| {
                    v.$field = x;
                    v.adjusted = Some((rule_at(&ctx), $name));
                },
            );
        )*};
    }
    verdict_field!("team" => team, "priority" => priority, "template" => template, "reply" => reply, "category" => category);
    engine.register_get("reason", |v: &mut Verdict| v.reason.clone());

    macro_rules! facts_get {
        ($($name:literal => $field:ident),* $(,)?) => {
            $(engine.register_get($name, |m: &mut MessageFacts| m.0.$field.clone());)*
        };
    }
    facts_get!(
        "channel" => channel,
        "language" => language, "category" => category, "topic" => topic, "template" => topic_template, "team" => topic_team,
        "sentiment" => sentiment, "sentiment_score" => sentiment_score, "hour" => hour,
        "minute" => minute, "weekday" => weekday, "lang" => lang, "lang_name" => lang_name,
        "lang_supported" => lang_supported, "guess" => guess, "critical_guess" => critical_guess,
        "word_count" => word_count,
    );
    engine.register_get("features", |m: &mut MessageFacts| *m.0.features_view());
    engine.register_get("id", |m: &mut MessageFacts| m.0.id.shared().clone());
    engine.register_get("text", |m: &mut MessageFacts| m.0.text.shared().clone());
    engine.register_get("normalized", |m: &mut MessageFacts| {
        m.0.normalized.shared().clone()
    });
    // Copied into a new array on every read, as the array a getter returns always is.
    engine.register_get("topics", |m: &mut MessageFacts| -> Array {
        m.0.topics.iter().cloned().map(Dynamic::from).collect()
    });
    engine.register_get("categories", |m: &mut MessageFacts| -> Array {
        m.0.categories.iter().cloned().map(Dynamic::from).collect()
    });

    // `msg.topic_guess` is a handle: the topic model scores the message only when a script
    // reads what it says (`.topic`, `.score`, `.words`, `.probability(…)`). Whether the
    // examples name a topic at all (`.knows(…)`) needs no scoring, and the default script asks
    // that first.
    engine.register_get("topic_guess", |m: &mut MessageFacts| {
        TopicReading(m.clone())
    });
    engine.register_get("topic", |g: &mut TopicReading| g.view().topic.clone());
    engine.register_get("score", |g: &mut TopicReading| g.view().score);
    engine.register_get("words", |g: &mut TopicReading| g.view().words.clone());
    engine.register_fn("probability", |g: &mut TopicReading, t: ImmutableString| {
        g.view()
            .probabilities
            .iter()
            .find(|(name, _)| *name == t)
            .map_or(0.0, |(_, p)| *p)
    });
    // Whether the examples name this topic at all: a topic nobody labelled has probability 0,
    // which says nothing about the message.
    engine.register_fn("knows", |g: &mut TopicReading, t: ImmutableString| {
        g.0.0
            .classifier
            .as_deref()
            .is_some_and(|c| c.knows_topic(&t))
    });

    // Shared, so `msg.guess` (read several times a message) copies a pointer, not the guess.
    engine.register_get("category", |g: &mut Arc<GuessView>| g.category.clone());
    engine.register_get("score", |g: &mut Arc<GuessView>| g.score);
    engine.register_get("words", |g: &mut Arc<GuessView>| g.words.clone());
    engine.register_fn(
        "probability",
        |g: &mut Arc<GuessView>, c: ImmutableString| {
            g.probabilities
                .iter()
                .find(|(name, _)| *name == c.as_str())
                .map_or(0.0, |(_, p)| *p)
        },
    );
    engine.register_fn(
        "says",
        |g: &mut Arc<GuessView>, c: ImmutableString, min_score: f64| {
            g.category == c && g.score >= min_score
        },
    );

    macro_rules! feature_get {
        ($($name:literal => $field:ident),* $(,)?) => {
            $(engine.register_get($name, |f: &mut FeaturesView| i64::from(f.0.$field));)*
        };
    }
    feature_get!(
        "chars" => chars, "words" => words, "urls" => urls, "emails" => emails,
        "phones" => phones, "amounts" => amounts, "emoji" => emoji,
        "positive_emoji" => positive_emoji, "negative_emoji" => negative_emoji,
        "question_marks" => question_marks, "exclamation_marks" => exclamation_marks,
        "caps_words" => caps_words,
    );
    engine.register_get("all_caps", |f: &mut FeaturesView| f.0.all_caps);
    engine.register_fn("has_topic", |m: &mut MessageFacts, id: ImmutableString| {
        m.0.topics.contains(&id)
    });
    // The keyword categories among `list`, in the list's order: one native call where a
    // `filter` closure costs a script call per entry on every message.
    engine.register_fn(
        "categories_in",
        |m: &mut MessageFacts, list: Array| -> Array {
            list.into_iter()
                .filter(|c| {
                    c.read_lock::<ImmutableString>()
                        .is_some_and(|c| m.0.categories.contains(&*c))
                })
                .collect()
        },
    );
    engine.register_fn(
        "has_category",
        |m: &mut MessageFacts, c: ImmutableString| m.0.categories.contains(&c),
    );

    engine.register_get("state", |c: &mut ConversationView| c.state.clone());
    engine.register_get("human_owned", |c: &mut ConversationView| {
        c.state.as_str() == "human"
    });
    engine.register_get("messages_today", |c: &mut ConversationView| {
        c.messages_today
    });
    engine.register_get("auto_replies", |c: &mut ConversationView| c.auto_replies);
    engine.register_get("complaints_24h", |c: &mut ConversationView| {
        c.complaints_24h
    });
    engine.register_get("complaints_7d", |c: &mut ConversationView| c.complaints_7d);

    engine.register_fn("exists", |t: &mut TeamsView, id: ImmutableString| {
        t.teams.get(&id).is_some()
    });
    engine.register_fn("is_open", |t: &mut TeamsView, id: ImmutableString| {
        t.teams.get(&id).is_some_and(|team| team.is_open(t.at))
    });
    engine.register_fn("closed_today", |t: &mut TeamsView, id: ImmutableString| {
        t.teams
            .get(&id)
            .is_some_and(|team| team.closed_all_day(t.at))
    });
    engine.register_fn("next_open", |t: &mut TeamsView, id: ImmutableString| {
        describe_teams(t, &id)
    });

    engine.register_fn(
        "contains_any",
        |text: ImmutableString, words: Array| -> Result<bool, Box<EvalAltResult>> {
            let words: Vec<String> = words.iter().map(ToString::to_string).collect();
            host_contains_any(&text, &words)
        },
    );
    engine.register_fn(
        "starts_with_any",
        |text: ImmutableString, words: Array| -> Result<bool, Box<EvalAltResult>> {
            let words: Vec<String> = words.iter().map(ToString::to_string).collect();
            host_starts_with_any(&text, &words)
        },
    );
    engine.register_fn("shorten", host_shorten);
}

/// `teams.next_open(id)`: when the team opens next, in words, or empty.
pub(in crate::script) fn describe_teams(t: &TeamsView, id: &str) -> ImmutableString {
    t.teams
        .get(id)
        .and_then(|team| team.next_open(t.at))
        .map(|next| describe_next_open(t.at, next, t.language).into())
        .unwrap_or_default()
}

/// `contains_any(text, words)`: whether a word or phrase of `words` is in `text`, as words.
/// Shared by both ways a script runs, so each counts the same work.
pub(in crate::script) fn host_contains_any(
    text: &str,
    words: &[impl AsRef<str>],
) -> Result<bool, Box<EvalAltResult>> {
    find_words(text, words, false)
}

/// `starts_with_any(text, words)`: whether `text` opens with a word or phrase of `words`, as
/// words ("is the library open" opens with "is"; "island" does not).
pub(in crate::script) fn host_starts_with_any(
    text: &str,
    words: &[impl AsRef<str>],
) -> Result<bool, Box<EvalAltResult>> {
    find_words(text, words, true)
}

fn find_words(
    text: &str,
    words: &[impl AsRef<str>],
    at_start: bool,
) -> Result<bool, Box<EvalAltResult>> {
    // Each list is normalised once per thread, and searched in one pass with an automaton:
    // comparing each word at each word start cost about 1,000 instructions a word of the list,
    // every message (session 23).
    word_list(words).find_charged(text, at_start)
}

/// A script's word list, normalised, with its searcher.
pub(in crate::script) struct WordList {
    /// The words as the script wrote them, to tell two lists with the same hash apart.
    written: Vec<Box<str>>,
    /// The bytes of `written`, which a search is charged for.
    written_bytes: usize,
    /// The words as [`normalize`] writes them, the empty ones left out.
    normal: Vec<Box<str>>,
    /// `None` when the list is too large for an automaton.
    searcher: Option<AhoCorasick>,
}

impl WordList {
    pub(in crate::script) fn new(words: &[impl AsRef<str>]) -> WordList {
        let normal: Vec<Box<str>> = words
            .iter()
            .map(|w| normal_word(w.as_ref()))
            .filter(|w| !w.is_empty())
            .map(|w| w.into())
            .collect();
        // Standard semantics, so that every match is reported, overlapping ones too: a word
        // that matches inside another word must not hide one that matches as a word.
        let searcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(normal.iter().map(|w| w.as_bytes()))
            .ok();
        WordList {
            written: words.iter().map(|w| w.as_ref().into()).collect(),
            written_bytes: words.iter().map(|w| w.as_ref().len()).sum(),
            normal,
            searcher,
        }
    }

    /// `contains_any(text, words)` (or `starts_with_any`, `at_start`), its reading charged to
    /// the run: one operation per 64 bytes of text per word, and the list's own bytes.
    pub(in crate::script) fn find_charged(
        &self,
        text: &str,
        at_start: bool,
    ) -> Result<bool, Box<EvalAltResult>> {
        charge_host_work(
            text.len().saturating_mul(self.written.len().max(1)) + self.written_bytes,
        )?;
        Ok(self.find(text, at_start))
    }

    fn find(&self, text: &str, at_start: bool) -> bool {
        // Scripts pass `msg.normalized` nearly always: normalised again, it would come out the
        // same.
        let text: Cow<str> = if is_normal(text) {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(normalize(text))
        };
        let bytes = text.as_bytes();
        if at_start {
            return self
                .normal
                .iter()
                .any(|word| text.starts_with(&**word) && ends_word(bytes, word.len()));
        }
        match &self.searcher {
            Some(searcher) => searcher
                .find_overlapping_iter(bytes)
                .any(|m| starts_word(bytes, m.start()) && ends_word(bytes, m.end())),
            // A list too large for an automaton is compared word by word.
            None => self.normal.iter().any(|word| {
                (0..bytes.len()).any(|at| {
                    starts_word(bytes, at)
                        && bytes[at..].starts_with(word.as_bytes())
                        && ends_word(bytes, at + word.len())
                })
            }),
        }
    }
}

/// The [`WordList`] of `words`, from this thread's cache.
fn word_list(words: &[impl AsRef<str>]) -> Rc<WordList> {
    let mut hasher = FxHasher::default();
    for word in words {
        word.as_ref().hash(&mut hasher);
    }
    let key = hasher.finish();
    WORD_LISTS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(list) = cache.get(&key)
            && list.written.len() == words.len()
            && list
                .written
                .iter()
                .zip(words)
                .all(|(a, b)| **a == *b.as_ref())
        {
            return Rc::clone(list);
        }
        if cache.len() >= WORD_LISTS_KEPT {
            cache.clear();
        }
        let list = Rc::new(WordList::new(words));
        cache.insert(key, Rc::clone(&list));
        list
    })
}

/// `word` as [`normalize`] writes it; the already-normal word as it is, without a copy.
fn normal_word(word: &str) -> Cow<'_, str> {
    if is_normal(word) {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(normalize(word))
    }
}

/// How many word lists a thread keeps: every list of every script several times over.
const WORD_LISTS_KEPT: usize = 1024;

thread_local! {
    /// The script's word lists met on this thread, by a hash of their words.
    static WORD_LISTS: RefCell<FxHashMap<u64, Rc<WordList>>> = RefCell::new(FxHashMap::default());
}

/// Whether `word` is already what [`normalize`] makes of it: lowercase ASCII letters and digits,
/// single spaces between them.
fn is_normal(word: &str) -> bool {
    let bytes = word.as_bytes();
    !bytes.is_empty()
        && bytes[0] != b' '
        && bytes[bytes.len() - 1] != b' '
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b' ')
        && !word.contains("  ")
}

/// `shorten(text, limit)`.
pub(in crate::script) fn host_shorten(
    text: ImmutableString,
    limit: i64,
) -> Result<ImmutableString, Box<EvalAltResult>> {
    charge_host_work(text.len())?;
    Ok(shorten(&text, usize::try_from(limit).unwrap_or(0)).into())
}

thread_local! {
    /// The work host functions did in the script run on this thread, and what it may do: a
    /// host function is one Rhai operation however long its text, so `contains_any` on a long
    /// text in a loop would otherwise run for seconds within the operation limit.
    pub(super) static HOST_WORK: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, u64::MAX)) };
}

/// Counts a host function's work (one operation per 64 bytes it reads) against the run's
/// operation limit; over it, the run stops as an endless loop would.
fn charge_host_work(bytes: usize) -> Result<(), Box<EvalAltResult>> {
    HOST_WORK.with(|work| {
        let (used, budget) = work.get();
        let used = used.saturating_add(u64::try_from(bytes / 64 + 1).unwrap_or(u64::MAX));
        work.set((used, budget));
        if used > budget {
            Err(Box::new(EvalAltResult::ErrorTooManyOperations(
                Position::NONE,
            )))
        } else {
            Ok(())
        }
    })
}
