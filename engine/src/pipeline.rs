//! The decision pipeline: one message in, one [`Decision`] out.
//!
//! ```text
//! normalise → match topics → sentiment + language → escalation.rhai → governance.rhai
//!           → precedence (fail-safe, review, invariants) → render reply → Decision
//! ```
//!
//! Everything expensive was compiled with the rulebook; this path only scans the text once,
//! runs the two scripts and fills a template. It never fails: every error becomes a fail-safe
//! escalation to the default team, with the error in the diagnostics.
//!
//! The methods here ([`Rulebook::decide`], [`Rulebook::explain`],
//! [`Rulebook::explain_again`]) are the rulebook's behaviour; the rulebook module itself only
//! compiles and holds it, so it never imports this one.

use std::sync::{Arc, OnceLock};

use rhai::ImmutableString;
use serde::Serialize;

// They live in `context`, so the rulebook's golden cases can hold them without the rulebook
// importing the pipeline; the store still names them through here.
pub use crate::context::{ConversationFacts, ConversationState, DecideContext};
use crate::decision::{Action, Category, Decision, Diagnostics, Language, Priority};
use crate::message::{ChannelKind, Inbound};
use crate::normalize::normalize_into;
use crate::rulebook::Rulebook;
use crate::script::{
    ConversationView, FactsInner, MessageFacts, ScriptError, ScriptInputs, TeamsView, Text,
    Verdict, VerdictAction, empty_string,
};
use crate::signals;
use crate::teams::{describe_deadline, describe_duration, describe_next_open};
use crate::templates::Vars;

/// Names the scripts see, interned once instead of allocated per message.
struct Names {
    channels: [ImmutableString; ChannelKind::ALL.len()],
    categories: [ImmutableString; 13],
    languages: [ImmutableString; 2],
    sentiments: [ImmutableString; 3],
    weekdays: [ImmutableString; 7],
    states: [ImmutableString; 3],
}

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| Names {
        channels: ChannelKind::ALL.map(|c| c.as_str().into()),
        categories: Category::ALL.map(|c| c.as_str().into()),
        languages: ["nl", "en"].map(Into::into),
        sentiments: ["negative", "neutral", "positive"].map(Into::into),
        weekdays: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map(Into::into),
        states: ["bot", "human", "closed"].map(Into::into),
    })
}

fn index_of<T: PartialEq>(all: &[T], item: &T) -> usize {
    all.iter().position(|x| x == item).unwrap_or(0)
}

/// A verdict that passed validation, with its reply rendered.
struct Checked(Verdict);

/// What one script said, for explanations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptStep {
    pub action: &'static str,
    pub team: String,
    pub priority: String,
    pub template: String,
    pub reason: String,
    /// The script line that decided (`escalation.rhai:77`).
    pub rule: String,
}

/// Every step of one decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trace {
    pub normalized: String,
    /// The escalation script's verdict, or its error.
    pub proposal: Option<Result<ScriptStep, String>>,
    /// The governance script's verdict, or its error; `None` when it did not run.
    pub review: Option<Result<ScriptStep, String>>,
}

fn step(result: &Result<Checked, ScriptError>) -> Result<ScriptStep, String> {
    match result {
        Ok(Checked(v)) => Ok(ScriptStep {
            action: v.action.as_str(),
            team: v.team.to_string(),
            priority: v.priority.to_string(),
            template: v.template.to_string(),
            reason: v.reason.to_string(),
            rule: v
                .adjusted
                .as_ref()
                .map_or_else(|| v.rule.clone(), |(rule, _)| rule.clone()),
        }),
        Err(error) => Err(error.to_string()),
    }
}

impl Rulebook {
    /// Decides what happens to `msg`. Never panics on input and never returns without a
    /// decision; the message's own `received_at` is "now" for office hours.
    pub fn decide(&self, msg: &Inbound, ctx: &DecideContext) -> Decision {
        self.decide_traced(msg, ctx, None)
    }

    /// Decides like [`Rulebook::decide`] and also returns every step: the normalised text and
    /// what each script said. `webcare explain` uses it to show why a decision came out as it
    /// did; the per-message path does not pay for it.
    pub fn explain(&self, msg: &Inbound, ctx: &DecideContext) -> (Decision, Trace) {
        let mut trace = Trace::default();
        let decision = self.decide_traced(msg, ctx, Some(&mut trace));
        (decision, trace)
    }

    /// Explains a decision this rulebook made earlier (`webcare explain`, the inbox's explain
    /// panel): decides `msg` again with the conversation facts it was decided with, tracing
    /// every step. The crisis switch of that moment is not stored with a decision, so when
    /// deciding again does not do what `decided` did (action, team, priority), the other crisis
    /// setting is tried; the note says which setting explains it, or that today's outcome
    /// differs and the steps are today's.
    pub fn explain_again(
        &self,
        msg: &Inbound,
        facts: &ConversationFacts,
        decided: &Decision,
    ) -> (Decision, Trace, Option<String>) {
        let same = |a: &Decision| {
            a.action.name() == decided.action.name()
                && a.action.team() == decided.action.team()
                && a.action.priority() == decided.action.priority()
        };
        let mut context = DecideContext {
            conversation: facts.clone(),
            crisis_mode: None,
        };
        let (decision, trace) = self.explain(msg, &context);
        if same(&decision) {
            return (decision, trace, None);
        }
        context.crisis_mode = Some(!self.crisis_mode);
        let (other, other_trace) = self.explain(msg, &context);
        if same(&other) {
            let state = if self.crisis_mode { "off" } else { "on" };
            let note = format!(
                "crisis mode was {state} when this message was decided (the crisis switch), so it is explained with crisis mode {state}"
            );
            return (other, other_trace, Some(note));
        }
        let note = format!(
            "deciding again gives {} where the stored decision was {}; the steps shown are today's",
            decision.action.name(),
            decided.action.name()
        );
        (decision, trace, Some(note))
    }

    /// Decides a reply on its new part, not on the thread quoted below it ([`crate::quoted`]):
    /// the municipality's own formal mail read as a legal letter, its topics as the resident's
    /// question. Unless only the whole message is a matter of safety or names a critical topic:
    /// "Last chance." above one's own threat, a reporter sending the question again. A message
    /// with no quote is decided once, as before.
    fn decide_traced(
        &self,
        msg: &Inbound,
        ctx: &DecideContext,
        trace: Option<&mut Trace>,
    ) -> Decision {
        let new = crate::quoted::new_text(&msg.text);
        if new.len() == msg.text.len() {
            return self.decide_text(msg, &msg.text, ctx, trace);
        }
        let on_new = self.decide_text(msg, new, ctx, None);
        let on_all = self.decide_text(msg, &msg.text, ctx, None);
        let critical_topic = |d: &Decision| {
            d.diagnostics
                .topics
                .iter()
                .any(|t| signals::CRITICAL.contains(&t.category))
        };
        let safety = |d: &Decision| {
            matches!(
                d.diagnostics.category,
                Category::Crisis | Category::Distress | Category::Abuse
            ) || d.action.team() == Some("crisis")
        };
        let whole = (critical_topic(&on_all) && !critical_topic(&on_new))
            || (safety(&on_all) && !safety(&on_new));
        let (text, decided) = if whole {
            (msg.text.as_str(), on_all)
        } else {
            (new, on_new)
        };
        match trace {
            Some(trace) => self.decide_text(msg, text, ctx, Some(trace)),
            None => decided,
        }
    }

    fn decide_text(
        &self,
        msg: &Inbound,
        text: &str,
        ctx: &DecideContext,
        mut trace: Option<&mut Trace>,
    ) -> Decision {
        let n = names();
        let mut normalized = String::new();
        normalize_into(text, &mut normalized);
        if let Some(trace) = trace.as_deref_mut() {
            trace.normalized = normalized.clone();
        }
        // Split into words once for the matcher, the word lists and the classifier.
        let words = crate::normalize::word_ranges(&normalized);
        let (topics, negated) = self.matcher.find_explained_in(&normalized, &words);
        let topic_category = topics.first().map_or(Category::Unknown, |t| t.category);
        let counted = self.lexicon.analyse_words(
            crate::normalize::words_at(&normalized, &words),
            self.default_language,
        );
        let sentiment = counted.sentiment;
        let word_count = counted.words;
        let written = signals::written_in(&self.languages, text, &counted, word_count, |code| {
            self.templates.speaks("holding_open", code)
        });
        let language = written.reply;
        let (guess, critical_guess) = signals::guesses(
            self.classifier.as_ref(),
            text,
            &normalized,
            &words,
            &counted.vocabulary,
        );
        let (guess, critical_guess) = (Arc::new(guess), Arc::new(critical_guess));
        let local = self.teams.local(msg.received_at);
        let crisis_mode = ctx.crisis_mode.unwrap_or(self.crisis_mode);

        let primary = topics.first().and_then(|t| self.topic_info.get(&t.topic));
        let topic_ids: Vec<ImmutableString> = topics
            .iter()
            .filter_map(|t| self.topic_info.get(&t.topic))
            .map(|info| info.id.clone())
            .collect();
        let mut categories: Vec<ImmutableString> = Vec::new();
        for t in &topics {
            let name = &n.categories[index_of(&Category::ALL, &t.category)];
            if !categories.contains(name) {
                categories.push(name.clone());
            }
        }
        use chrono::{Datelike, Timelike};
        let facts = MessageFacts(Arc::new(FactsInner {
            id: Text::new(msg.id.clone()),
            text: Text::new(text.to_owned()),
            normalized: Text::new(normalized),
            channel: n.channels[index_of(&ChannelKind::ALL, &msg.channel)].clone(),
            language: n.languages[language as usize].clone(),
            category: n.categories[index_of(&Category::ALL, &topic_category)].clone(),
            topic: primary.map(|p| p.id.clone()).unwrap_or_else(empty_string),
            topics: topic_ids,
            categories,
            topic_template: primary
                .map(|p| p.template.clone())
                .unwrap_or_else(empty_string),
            topic_team: primary.map(|p| p.team.clone()).unwrap_or_else(empty_string),
            sentiment: n.sentiments[sentiment.label as usize].clone(),
            sentiment_score: i64::from(sentiment.score),
            hour: i64::from(local.hour()),
            minute: i64::from(local.minute()),
            weekday: n.weekdays[local.weekday().num_days_from_monday() as usize].clone(),
            lang: written.code.into(),
            lang_name: written.name.into(),
            lang_supported: written.supported,
            guess: Arc::clone(&guess),
            critical_guess: Arc::clone(&critical_guess),
            features: std::sync::OnceLock::new(),
            classifier: self.classifier.clone(),
            topic_guess: std::sync::OnceLock::new(),
            words,
            vocabulary: counted.vocabulary,
            word_count: word_count as i64,
        }));
        let conversation = &ctx.conversation;
        let inputs = ScriptInputs {
            msg: facts,
            conversation: ConversationView {
                state: n.states[conversation.state as usize].clone(),
                messages_today: conversation.messages_today,
                auto_replies: conversation.auto_replies,
                complaints_24h: conversation.complaints_24h,
                complaints_7d: conversation.complaints_7d,
            },
            teams: TeamsView {
                teams: Arc::clone(&self.teams),
                at: local,
                language,
            },
            crisis_mode,
            default_team: self.default_team_name.clone(),
            reply_limit: self.reply_limit(msg.channel) as i64,
        };

        // Joined by hand rather than with `format!`: every decision builds these, and the
        // formatting machinery was a noticeable part of a decision's cost.
        let mut rules: Vec<String> = topics
            .iter()
            .map(|t| ["topic:", t.topic.as_str()].concat())
            .collect();
        let mut reasons = Vec::with_capacity(3);
        let mut script_errors = Vec::new();
        reasons.push(match topics.first() {
            Some(t) => [
                "recognised `",
                t.topic.as_str(),
                "` (",
                t.category.as_str(),
                ") from ",
                t.matched.join(", ").as_str(),
            ]
            .concat(),
            None => "no topic recognised".to_owned(),
        });
        if !negated.is_empty() {
            reasons.push(format!("not counted (negated): {}", negated.join(", ")));
        }
        if !written.supported {
            reasons.push(format!(
                "written in {} ({}), which the templates do not speak",
                written.name, written.code
            ));
        }
        if !guess.category.is_empty() {
            reasons.push(describe_guess("classifier", &guess));
            if critical_guess.category != guess.category && critical_guess.score >= 0.2 {
                reasons.push(describe_guess("classifier, most critical", &critical_guess));
            }
        }

        let mut run = crate::script::ScriptRun::new(&inputs);
        let proposed = self
            .scripts
            .propose(&mut run)
            .and_then(|v| self.check(v, language));
        if let Some(trace) = trace.as_deref_mut() {
            trace.proposal = Some(step(&proposed));
        }

        // The precedence of decisions, strongest first. This is the one place that says which
        // verdict wins; keep it that way.
        let verdict = match proposed {
            // 1. The escalation script failed or proposed something impossible: nobody decided,
            //    so a human must, and nothing goes out automatically.
            Err(error) => self.fail_safe(error, &mut rules, &mut reasons, &mut script_errors),
            Ok(Checked(proposal)) => {
                let review = self
                    .scripts
                    .review(&mut run, inputs.reply_limit, proposal.clone())
                    .and_then(|v| self.check(v, language));
                if let Some(trace) = trace {
                    trace.review = Some(step(&review));
                }
                match review {
                    // 2. The review failed: the proposal was never checked, same fail-safe.
                    Err(error) => {
                        self.fail_safe(error, &mut rules, &mut reasons, &mut script_errors)
                    }
                    // 3. Governance changed the proposal: governance has the last word.
                    Ok(Checked(reviewed)) if reviewed.differs_from(&proposal) => {
                        rules.push(proposal.rule.clone());
                        reasons.push(proposal.reason.to_string());
                        match &reviewed.adjusted {
                            // Governance adjusted the proposal in place (`decision.reply = …`).
                            Some((rule, field)) if reviewed.rule == proposal.rule => {
                                rules.push(rule.clone());
                                reasons.push(format!("governance adjusted the {field}"));
                            }
                            _ => {
                                rules.push(reviewed.rule.clone());
                                reasons.push(format!("governance: {}", reviewed.reason));
                            }
                        }
                        reviewed
                    }
                    // 4. Otherwise the proposal stands, reviewed.
                    Ok(Checked(_)) => {
                        rules.push(proposal.rule.clone());
                        reasons.push(proposal.reason.to_string());
                        proposal
                    }
                }
            }
        };
        // 5. The invariant no script can lift: while a human owns the conversation the bot
        //    sends nothing automatic, neither an answer nor a holding reply. The message is
        //    still recorded, and an escalation still reaches the agent who owns it.
        let human_owned = conversation.state == ConversationState::Human;
        let verdict = if human_owned && verdict.action == VerdictAction::Answer {
            rules.push("engine:human-owns-conversation".to_owned());
            reasons.push("a colleague owns this conversation, so the bot stays silent".to_owned());
            Verdict {
                action: VerdictAction::Log,
                ..verdict
            }
        } else {
            if human_owned && verdict.action == VerdictAction::Escalate {
                rules.push("engine:human-owns-conversation".to_owned());
                reasons.push(
                    "a colleague owns this conversation, so no holding reply is sent".to_owned(),
                );
            }
            verdict
        };

        // A script may file the decision under another category (from the classifier's guess,
        // where no keyword matched); check() made sure the name is a category.
        // (An empty name keeps the topic's category without building a parse error.)
        let category = if verdict.category.is_empty() {
            topic_category
        } else {
            verdict
                .category
                .parse::<Category>()
                .unwrap_or(topic_category)
        };
        let unsupported = (!written.supported).then_some(written.code);
        let action = self.render(verdict, language, unsupported, local, human_owned);
        Decision {
            message_id: msg.id.clone(),
            action,
            diagnostics: Diagnostics {
                category,
                topics,
                rules,
                script_errors,
                sentiment,
                language,
                rulebook: self.version.clone(),
                reasons,
            },
        }
    }

    /// Validates what a script returned and renders an answer's reply.
    fn check(&self, mut v: Verdict, language: Language) -> Result<Checked, ScriptError> {
        if !v.category.is_empty() {
            v.category.parse::<Category>().map_err(|e| {
                ScriptError::at_rule(v.adjusted.as_ref().map_or(&v.rule, |a| &a.0), e)
            })?;
        }
        match v.action {
            VerdictAction::Answer => {
                if v.reply.is_empty() || v.rendered_from != v.template {
                    let reply = self
                        .templates
                        .render(&v.template, language, &Vars::default())
                        .ok_or_else(|| {
                            ScriptError::at_rule(
                                &v.rule,
                                format!("answer uses template `{}`, which templates.toml does not define", v.template),
                            )
                        })?;
                    v.reply = reply.into();
                    v.rendered_from = v.template.clone();
                }
            }
            VerdictAction::Escalate => {
                if self.teams.get(&v.team).is_none() {
                    return Err(ScriptError::at_rule(
                        &v.rule,
                        format!(
                            "escalate names team `{}`, which teams.toml does not define",
                            v.team
                        ),
                    ));
                }
                v.priority
                    .parse::<Priority>()
                    .map_err(|e| ScriptError::at_rule(&v.rule, e))?;
                if !v.template.is_empty() && !self.templates.contains(&v.template) {
                    return Err(ScriptError::at_rule(
                        &v.rule,
                        format!(
                            "holding template `{}` is not defined in templates.toml",
                            v.template
                        ),
                    ));
                }
            }
            VerdictAction::Log => {}
        }
        Ok(Checked(v))
    }

    fn fail_safe(
        &self,
        error: ScriptError,
        rules: &mut Vec<String>,
        reasons: &mut Vec<String>,
        script_errors: &mut Vec<String>,
    ) -> Verdict {
        let message = error.to_string();
        tracing::warn!(error = %message, "script failed; escalating to the default team");
        rules.push("engine:fail-safe".to_owned());
        reasons.push(format!(
            "the rules could not decide ({message}); a colleague of `{}` takes over",
            self.default_team
        ));
        script_errors.push(message);
        Verdict {
            action: VerdictAction::Escalate,
            team: self.default_team.as_str().into(),
            priority: Priority::High.as_str().into(),
            template: ImmutableString::new(),
            reply: ImmutableString::new(),
            reason: "fail-safe".into(),
            rule: "engine:fail-safe".to_owned(),
            rendered_from: ImmutableString::new(),
            adjusted: None,
            category: ImmutableString::new(),
        }
    }

    /// Turns the final verdict into an action with the customer-facing text.
    fn render(
        &self,
        v: Verdict,
        language: Language,
        unsupported: Option<&str>,
        local: chrono::DateTime<chrono_tz::Tz>,
        silent: bool,
    ) -> Action {
        match v.action {
            VerdictAction::Answer => Action::Answer {
                template: v.template.to_string(),
                reply: v.reply.to_string(),
            },
            VerdictAction::Log => Action::Log,
            VerdictAction::Escalate => {
                // check() guarantees the team exists, except on the fail-safe path where the
                // default team is validated at load.
                let team = self.teams.get(&v.team);
                let open = team.is_some_and(|t| t.is_open(local));
                let template = if !v.template.is_empty() {
                    v.template.to_string()
                } else if open {
                    "holding_open".to_owned()
                } else {
                    "holding_closed".to_owned()
                };
                let priority: Priority = v.priority.parse().unwrap_or(Priority::High);
                let words = |language: Language| {
                    let next_open = team
                        .and_then(|t| t.next_open(local))
                        .map(|next| describe_next_open(local, next, language))
                        .unwrap_or_else(|| match language {
                            Language::Nl => "zo snel mogelijk".to_owned(),
                            Language::En => "as soon as possible".to_owned(),
                        });
                    let minutes = team.map_or(240, |t| t.sla_minutes(priority));
                    let within = describe_duration(minutes, language);
                    let deadline = team
                        .and_then(|t| t.sla_deadline(local, priority))
                        .map(|due| describe_deadline(local, due, language))
                        .unwrap_or_else(|| next_open.clone());
                    (next_open, within, deadline)
                };
                let team_name = |language| team.map_or(v.team.as_str(), |t| t.name_in(language));
                let (next_open, within, deadline) = words(language);
                let vars = Vars {
                    next_open: &next_open,
                    within: &within,
                    deadline: &deadline,
                    team: team_name(language),
                };
                let reply = match (silent, unsupported) {
                    (true, _) => None,
                    (false, None) => self.templates.render(&template, language, &vars),
                    // A language the templates do not speak: its own text when the template
                    // has one, else Dutch and English, each with its own words.
                    (false, Some(code)) => {
                        let (nl, en) = (words(Language::Nl), words(Language::En));
                        let vars_nl = Vars {
                            next_open: &nl.0,
                            within: &nl.1,
                            deadline: &nl.2,
                            team: team_name(Language::Nl),
                        };
                        let vars_en = Vars {
                            next_open: &en.0,
                            within: &en.1,
                            deadline: &en.2,
                            team: team_name(Language::En),
                        };
                        self.templates
                            .render_for_language(&template, code, &vars_nl, &vars_en)
                    }
                };
                Action::Escalate {
                    team: v.team.to_string(),
                    priority,
                    template: reply.as_ref().map(|_| template),
                    reply,
                }
            }
        }
    }
}

/// `classifier: press 0.82 (item, uitzending, reactie)`. Joined by hand: `{:.2}` of a float
/// was most of what formatting cost a decision (see [`two_decimals`]).
fn describe_guess(label: &str, guess: &crate::script::GuessView) -> String {
    let score = two_decimals(guess.score);
    let pieces = [
        label,
        ": ",
        guess.category.as_str(),
        " ",
        score.as_str(),
        " (",
        guess.words.as_str(),
        ")",
    ];
    // Pushed into one string of the right size: `concat` cost twice as much for eight short
    // pieces.
    let mut out = String::with_capacity(pieces.iter().map(|p| p.len()).sum());
    for piece in pieces {
        out.push_str(piece);
    }
    out
}

/// `format!("{:.2}", x)` for a probability, without the formatting machinery, which prints a
/// float digit by digit through exact big-number arithmetic. A guess's score is an `f32`
/// widened to `f64`, so `x * 100` is exact (24 bits of mantissa times 7 bits of 100 fit in
/// 53) and its rounding to a whole number is decided exactly by its fraction. Anything else
/// (a value that is not an `f32`, outside 0..=1, or a tie, where `format!` rounds to even) is
/// left to `format!`, so the text is always the same as before.
fn two_decimals(x: f64) -> String {
    let exact = f64::from(x as f32) == x && (0.0..=1.0).contains(&x) && x.is_sign_positive();
    let hundredths = x * 100.0;
    let whole = hundredths.floor();
    let fraction = hundredths - whole;
    if !exact || fraction == 0.5 {
        return format!("{x:.2}");
    }
    // 0..=100, so the casts are exact.
    let n = whole as u32 + u32::from(fraction > 0.5);
    let digits = [
        b'0' + (n / 100) as u8,
        b'.',
        b'0' + (n / 10 % 10) as u8,
        b'0' + (n % 10) as u8,
    ];
    String::from_utf8_lossy(&digits).into_owned()
}

/// `escalate to `webcare` (normal) with template `x` — the reason [escalation.rhai:53]`: one
/// script's verdict in the words `webcare explain` and the inbox's explain panel use.
impl std::fmt::Display for ScriptStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.action)?;
        if !self.team.is_empty() {
            write!(f, " to `{}` ({})", self.team, self.priority)?;
        }
        if !self.template.is_empty() {
            write!(f, " with template `{}`", self.template)?;
        }
        write!(f, " — {} [{}]", self.reason, self.rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RulebookErrors;
    use crate::decision::SentimentLabel;

    #[test]
    fn interned_names_line_up_with_the_enums() {
        let n = names();
        for (i, c) in Category::ALL.iter().enumerate() {
            assert_eq!(n.categories[i].as_str(), c.as_str());
        }
        for (i, c) in ChannelKind::ALL.iter().enumerate() {
            assert_eq!(n.channels[i].as_str(), c.as_str());
        }
        assert_eq!(n.languages[Language::En as usize].as_str(), "en");
        assert_eq!(
            n.sentiments[SentimentLabel::Positive as usize].as_str(),
            "positive"
        );
        assert_eq!(
            n.states[ConversationState::Human as usize].as_str(),
            "human"
        );
    }

    #[test]
    fn a_score_in_a_reason_reads_as_format_would_print_it() {
        let mut values: Vec<f64> = (0..=1.0f32.to_bits())
            .step_by(4099)
            .map(|bits| f64::from(f32::from_bits(bits)))
            .collect();
        // Around every rounding edge (k + 0.5) / 100, the exact ties (0.125) among them.
        for k in 0..100u32 {
            let edge = (k as f32 + 0.5) / 100.0;
            for step in -3i32..=3 {
                let bits = edge.to_bits().wrapping_add_signed(step);
                values.push(f64::from(f32::from_bits(bits)));
            }
        }
        values.extend([
            0.0,
            -0.0,
            1.0,
            0.125,
            0.375,
            0.995,
            0.1 + 0.2,
            1.5,
            f64::NAN,
        ]);
        for x in values {
            assert_eq!(two_decimals(x), format!("{x:.2}"), "{x:e}");
        }
    }

    #[test]
    fn explaining_again_finds_the_crisis_switch_of_the_moment() -> Result<(), RulebookErrors> {
        let rulebook = Rulebook::embedded()?;
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00+01:00")
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        let msg = Inbound::from_text(
            "m1",
            ChannelKind::Http,
            "Wat zijn de openingstijden van het stadskantoor?",
            at,
        );
        let facts = ConversationFacts::default();
        let in_crisis = DecideContext {
            conversation: facts.clone(),
            crisis_mode: Some(true),
        };
        let decided = rulebook.decide(&msg, &in_crisis);
        assert_eq!(decided.action.name(), "escalate");
        let (again, trace, note) = rulebook.explain_again(&msg, &facts, &decided);
        assert_eq!(again.action, decided.action);
        assert!(
            note.as_deref()
                .is_some_and(|n| n.starts_with("crisis mode was on when")),
            "{note:?}"
        );
        let proposal = trace.proposal.and_then(Result::ok).map(|s| s.to_string());
        assert!(
            proposal
                .as_deref()
                .is_some_and(|p| p.starts_with("answer with template `opening_hours` — ")),
            "{proposal:?}"
        );
        let review = trace.review.and_then(Result::ok).map(|s| s.to_string());
        assert!(
            review.as_deref().is_some_and(|r| r.starts_with(
                "escalate to `webcare` (high) with template `holding_crisis_mode` — crisis mode is on"
            )),
            "{review:?}"
        );

        let normal = rulebook.decide(&msg, &DecideContext::default());
        let (_, _, note) = rulebook.explain_again(&msg, &facts, &normal);
        assert_eq!(note, None, "nothing to say when it decides the same");
        Ok(())
    }
}
