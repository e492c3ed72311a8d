//! The "why" of an escalation, one click away below the work: the rules and rulebook version
//! that escalated it, the reasons as the engine wrote them, and the explain panel with every
//! step of each message's decision. Topics, keywords, reasons, rules and version are the
//! stored diagnostics (what happened); the normalised text and the scripts' verdicts come from
//! deciding again (see [`crate::explain`]). It is collapsed: the person answering needs the
//! conversation first, the governance lead checking a rule opens it.

use maud::{Markup, PreEscaped, html};
use webcare_engine::decision::Decision;

use super::Ctx;
use crate::explain::Explained;

/// The opening decision's facts for auditors: rules, reasons, script errors, version.
pub(super) fn render(
    ctx: &Ctx<'_>,
    opening: Option<&Decision>,
    explained: &[Explained],
    escalated: usize,
) -> Markup {
    let t = ctx.t;
    html! {
        section #why {
            details {
                summary { h2 { (t.why_step_by_step) } }
                @if let Some(d) = opening {
                    dl.facts {
                        dt { (t.rules) } dd { code #rules { (d.diagnostics.rules.join(" · ")) } }
                        dt { (t.reasons) } dd { (d.diagnostics.reasons.join("; ")) }
                        @if !d.diagnostics.script_errors.is_empty() {
                            dt { (t.script_errors) } dd { (d.diagnostics.script_errors.join("; ")) }
                        }
                        dt { (t.rulebook) } dd { code #rulebook { (d.diagnostics.rulebook) } }
                    }
                }
                (explain_panel(ctx, explained, escalated))
            }
        }
    }
}

/// Every step of each escalated message's decision (empty: no panel).
fn explain_panel(ctx: &Ctx<'_>, explained: &[Explained], escalated: usize) -> Markup {
    let t = ctx.t;
    if explained.is_empty() {
        return html! {};
    }
    html! {
        section #explain {
            @if escalated > explained.len() {
                // Our own fixed text with a <code>; the numbers are ours too.
                p { (PreEscaped(ctx.lang.last_of(explained.len(), escalated))) }
            }
            @for x in explained {
                @let d = &x.message.decision.diagnostics;
                @let stored = &x.message.decision.action;
                article.explain data-message=(x.message.message.id) {
                    dl.facts {
                        dt { (t.message) }
                        dd { code { (x.message.message.id) } " " span.explain-text { (x.message.message.text) } }
                        dt { (t.normalised) }
                        dd.explain-normalised { (x.trace.normalized) }
                        dt { (t.topics) }
                        dd.explain-topics {
                            @if d.topics.is_empty() {
                                (t.none_matched)
                            } @else {
                                ul {
                                    @for (i, topic) in d.topics.iter().enumerate() {
                                        li {
                                            strong { (topic.topic) }
                                            @if i == 0 { " (" (t.main_topic) ")" }
                                            " · " (topic.category.as_str()) " · " (t.matched) " "
                                            code { (topic.matched.join(", ")) }
                                        }
                                    }
                                }
                            }
                        }
                        dt { (t.category_language_sentiment) }
                        dd { (d.category.as_str()) ", " (d.language.as_str()) ", " (d.sentiment.label.as_str()) " (" (d.sentiment.score) ")" }
                        dt { (t.escalation_script) }
                        dd.explain-proposal { (x.proposal()) }
                        dt { (t.governance_script) }
                        dd.explain-governance { (x.governance()) }
                        dt { (t.decision) }
                        dd {
                            (stored.name())
                            @if let Some(team) = stored.team() { " to `" (team) "`" }
                            @if let Some(priority) = stored.priority() { ", priority " (priority) }
                        }
                        dt { (t.reasons) }
                        dd { ul.explain-reasons { @for reason in &d.reasons { li { (reason) } } } }
                        dt { (t.rules) }
                        dd { code { (d.rules.join(" · ")) } }
                        @if !d.script_errors.is_empty() {
                            dt { (t.script_errors) }
                            dd { (d.script_errors.join("; ")) }
                        }
                        dt { (t.rulebook) }
                        dd { code.explain-version { (d.rulebook) } }
                    }
                    @for note in &x.notes {
                        p.note { (note) }
                    }
                }
            }
        }
    }
}
