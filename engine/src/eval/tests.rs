//! The acceptability table and the metrics, on hand-made decisions: every figure is counted by
//! hand below, so a change in how the report counts shows up here.

use super::*;
use crate::decision::{Diagnostics, Sentiment, SentimentLabel};

fn topics() -> TopicTemplates {
    [
        ("passport", Some("passport")),
        ("passport_lost", Some("passport_lost")),
        ("pass", Some("pass")),
        ("opening_hours", Some("opening_hours")),
        ("greeting", Some("greeting")),
        ("benefits", None),
    ]
    .into_iter()
    .collect()
}

fn example(category: Category, topic: Option<&str>, lang: Option<&str>) -> Example {
    Example {
        text: format!("a {category} message"),
        category,
        topic: topic.map(str::to_owned),
        lang: lang.map(str::to_owned),
        line: 1,
        file: None,
    }
}

fn answer(template: &str) -> Action {
    Action::Answer {
        template: template.to_owned(),
        reply: "…".to_owned(),
    }
}

fn escalate(team: &str, priority: Priority) -> Action {
    Action::Escalate {
        team: team.to_owned(),
        priority,
        template: Some("holding_open".to_owned()),
        reply: Some("…".to_owned()),
    }
}

fn decision(action: Action, category: Category) -> Decision {
    Decision {
        message_id: "m".to_owned(),
        action,
        diagnostics: Diagnostics {
            category,
            topics: Vec::new(),
            rules: Vec::new(),
            script_errors: Vec::new(),
            sentiment: Sentiment {
                label: SentimentLabel::Neutral,
                score: 0,
            },
            language: Language::Nl,
            rulebook: "test".to_owned(),
            reasons: vec![format!("seen as {category}")],
        },
    }
}

fn judge(
    category: Category,
    topic: Option<&str>,
    lang: Option<&str>,
    action: &Action,
) -> Result<(), Fault> {
    acceptable(&example(category, topic, lang), &topics()).judge(action)
}

#[test]
fn critical_messages_go_to_their_team_and_never_to_the_bot() {
    use Category::{Abuse, Crisis, Distress, Legal, Press};
    use Priority::{High, Normal, Urgent};
    for label in [Crisis, Distress] {
        assert_eq!(
            judge(label, None, None, &escalate("crisis", Urgent)),
            Ok(())
        );
        assert_eq!(
            judge(label, None, None, &escalate("crisis", High)),
            Err(Fault::LowPriority)
        );
        assert_eq!(
            judge(label, None, None, &escalate("webcare", Urgent)),
            Err(Fault::WrongTeam)
        );
        assert_eq!(
            judge(label, None, None, &answer("opening_hours")),
            Err(Fault::Answered)
        );
        assert_eq!(
            judge(label, None, None, &Action::Log),
            Err(Fault::Unanswered)
        );
    }
    assert_eq!(
        judge(Press, None, None, &escalate("communications", Normal)),
        Ok(())
    );
    assert_eq!(
        judge(Press, None, None, &escalate("webcare", Urgent)),
        Err(Fault::WrongTeam)
    );
    assert_eq!(
        judge(Press, Some("passport"), None, &answer("passport")),
        Err(Fault::Answered)
    );
    assert_eq!(judge(Legal, None, None, &escalate("legal", Normal)), Ok(()));
    assert_eq!(
        judge(Legal, None, None, &escalate("communications", Normal)),
        Err(Fault::WrongTeam)
    );
    assert_eq!(judge(Abuse, None, None, &escalate("webcare", High)), Ok(()));
    assert_eq!(
        judge(Abuse, None, None, &escalate("crisis", Urgent)),
        Ok(())
    );
    assert_eq!(
        judge(Abuse, None, None, &escalate("webcare", Normal)),
        Err(Fault::LowPriority)
    );
    assert_eq!(
        judge(Abuse, None, None, &Action::Log),
        Err(Fault::Unanswered)
    );
}

#[test]
fn a_question_about_a_topic_gets_that_topics_answer_or_a_person() {
    use Category::{Question, Report};
    for label in [Question, Report] {
        let passport = Some("passport");
        assert_eq!(
            judge(label, passport, Some("nl"), &answer("passport")),
            Ok(())
        );
        // A sub-topic answers a narrower question about the same subject.
        assert_eq!(
            judge(label, passport, None, &answer("passport_lost")),
            Ok(())
        );
        assert_eq!(
            judge(
                label,
                passport,
                None,
                &escalate("civil_affairs", Priority::Low)
            ),
            Ok(())
        );
        assert_eq!(
            judge(label, passport, None, &answer("opening_hours")),
            Err(Fault::WrongAnswer)
        );
        assert_eq!(
            judge(label, passport, None, &Action::Log),
            Err(Fault::Unanswered)
        );
        // `pass` is not a sub-topic of `passport`, nor `passport` of `pass`.
        assert_eq!(
            judge(label, Some("pass"), None, &answer("passport")),
            Err(Fault::WrongAnswer)
        );
        // A topic without a template, or one the rulebook lacks: only a person can answer.
        assert_eq!(
            judge(label, Some("benefits"), None, &answer("passport")),
            Err(Fault::WrongAnswer)
        );
        assert_eq!(
            judge(
                label,
                Some("ferry"),
                None,
                &escalate("webcare", Priority::Low)
            ),
            Ok(())
        );
        // No topic at all: a person, never the bot, never nobody.
        assert_eq!(
            judge(label, None, None, &escalate("webcare", Priority::Normal)),
            Ok(())
        );
        assert_eq!(
            judge(label, None, None, &answer("opening_hours")),
            Err(Fault::WrongAnswer)
        );
        assert_eq!(
            judge(label, None, None, &Action::Log),
            Err(Fault::Unanswered)
        );
        // A greeting: a greeting back or nothing, not a person's time.
        let greeting = Some("greeting");
        assert_eq!(judge(label, greeting, None, &answer("greeting")), Ok(()));
        assert_eq!(judge(label, greeting, None, &Action::Log), Ok(()));
        assert_eq!(
            judge(label, greeting, None, &escalate("webcare", Priority::Low)),
            Err(Fault::Escalated)
        );
    }
}

#[test]
fn the_rest_is_logged_answered_or_escalated_as_it_deserves() {
    use Category::{Complaint, Compliment, Idea, Lead, Spam};
    let low = || escalate("webcare", Priority::Low);
    assert_eq!(judge(Complaint, None, None, &low()), Ok(()));
    assert_eq!(
        judge(Complaint, Some("passport"), None, &answer("passport")),
        Err(Fault::Answered)
    );
    assert_eq!(
        judge(Complaint, None, None, &Action::Log),
        Err(Fault::Unanswered)
    );
    assert_eq!(judge(Compliment, None, None, &answer("thanks")), Ok(()));
    assert_eq!(judge(Compliment, None, None, &Action::Log), Ok(()));
    assert_eq!(judge(Compliment, None, None, &low()), Err(Fault::Escalated));
    assert_eq!(judge(Spam, None, None, &Action::Log), Ok(()));
    assert_eq!(judge(Spam, None, None, &low()), Err(Fault::Escalated));
    assert_eq!(
        judge(Spam, None, None, &answer("greeting")),
        Err(Fault::Answered)
    );
    for label in [Idea, Lead] {
        assert_eq!(judge(label, None, None, &Action::Log), Ok(()));
        assert_eq!(judge(label, None, None, &low()), Ok(()));
        assert_eq!(
            judge(label, None, None, &answer("contact")),
            Err(Fault::Answered)
        );
    }
}

#[test]
fn a_language_without_templates_is_never_answered() {
    use Category::{Compliment, Question, Spam};
    let de = Some("de");
    assert_eq!(
        judge(Question, Some("passport"), de, &answer("passport")),
        Err(Fault::Answered)
    );
    assert_eq!(
        judge(
            Question,
            Some("passport"),
            de,
            &escalate("webcare", Priority::Low)
        ),
        Ok(())
    );
    assert_eq!(
        judge(Question, Some("passport"), de, &Action::Log),
        Err(Fault::Unanswered)
    );
    assert_eq!(judge(Question, Some("greeting"), de, &Action::Log), Ok(()));
    assert_eq!(
        judge(Question, Some("greeting"), de, &answer("greeting")),
        Err(Fault::Answered)
    );
    assert_eq!(judge(Compliment, None, de, &Action::Log), Ok(()));
    assert_eq!(
        judge(Compliment, None, de, &escalate("webcare", Priority::Low)),
        Ok(())
    );
    assert_eq!(
        judge(Compliment, None, de, &answer("thanks")),
        Err(Fault::Answered)
    );
    assert_eq!(judge(Spam, None, de, &Action::Log), Ok(()));
    assert_eq!(
        judge(Spam, None, de, &escalate("webcare", Priority::Low)),
        Err(Fault::Escalated)
    );
    // Labels are codes; their case does not matter.
    assert_eq!(
        judge(Question, Some("passport"), Some("EN"), &answer("passport")),
        Ok(())
    );
}

#[test]
fn what_is_acceptable_reads_as_words() {
    let words =
        |category, topic| acceptable(&example(category, topic, None), &topics()).to_string();
    assert_eq!(
        words(Category::Crisis, None),
        "escalate to `crisis` (urgent)"
    );
    assert_eq!(words(Category::Abuse, None), "escalate (high or urgent)");
    assert_eq!(
        words(Category::Question, Some("passport")),
        "answer with `passport` or `passport_lost`, or escalate"
    );
    assert_eq!(words(Category::Question, None), "escalate");
    assert_eq!(words(Category::Compliment, None), "answer, or log");
    assert_eq!(words(Category::Idea, None), "escalate, or log");
}

fn header() -> Header {
    Header {
        file: "dev.jsonl".to_owned(),
        rulebook_name: "Test".to_owned(),
        rulebook_version: "abc123".to_owned(),
        decided_at: "2026-11-23 10:00 Europe/Amsterdam".to_owned(),
        channel: "webchat".to_owned(),
    }
}

/// Eight messages, counted by hand:
///
/// | line | label | lang | decided | seen as | acceptable |
/// |---|---|---|---|---|---|
/// | 1 | question/passport | nl | answer passport | question | yes |
/// | 2 | question/passport | nl | answer opening_hours | question | no: wrong answer |
/// | 3 | question | en | escalate webcare | unknown | yes |
/// | 4 | press | nl | answer opening_hours | question | no: critical, answered |
/// | 5 | crisis | nl | escalate crisis urgent | crisis | yes |
/// | 6 | compliment | de | escalate webcare | compliment | yes |
/// | 7 | complaint | nl | log | compliment | no: unanswered |
/// | 8 | spam | - | log | spam | yes |
fn eight() -> Vec<(Example, Decision)> {
    use Category::*;
    let rows = [
        (
            Question,
            Some("passport"),
            Some("nl"),
            answer("passport"),
            Question,
        ),
        (
            Question,
            Some("passport"),
            Some("nl"),
            answer("opening_hours"),
            Question,
        ),
        (
            Question,
            None,
            Some("en"),
            escalate("webcare", Priority::Normal),
            Unknown,
        ),
        (Press, None, Some("nl"), answer("opening_hours"), Question),
        (
            Crisis,
            None,
            Some("nl"),
            escalate("crisis", Priority::Urgent),
            Crisis,
        ),
        (
            Compliment,
            None,
            Some("de"),
            escalate("webcare", Priority::Low),
            Compliment,
        ),
        (Complaint, None, Some("nl"), Action::Log, Compliment),
        (Spam, None, None, Action::Log, Spam),
    ];
    rows.into_iter()
        .enumerate()
        .map(|(i, (label, topic, lang, action, seen))| {
            let mut e = example(label, topic, lang);
            e.line = i + 1;
            (e, decision(action, seen))
        })
        .collect()
}

fn report_of(pairs: &[(Example, Decision)], thresholds: &EvalConfig) -> EvalReport {
    EvalReport::build(
        header(),
        pairs.iter().map(|(e, d)| (e, d)),
        &topics(),
        thresholds,
    )
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn the_headline_figures_count_what_they_say() {
    let report = report_of(&eight(), &EvalConfig::default());
    assert_eq!(report.messages, 8);
    assert_eq!((report.acceptable.count, report.acceptable.of), (5, 8));
    assert_eq!((report.automation.count, report.automation.of), (5, 8));
    assert_eq!(
        (report.critical_recall.count, report.critical_recall.of),
        (1, 2)
    );
    assert_eq!(
        (report.category_accuracy.count, report.category_accuracy.of),
        (5, 8)
    );
    assert_eq!(report.acceptable.percent(), "62.5%");
    assert_eq!(
        report.failures,
        [
            "critical recall 50.0% (1 of 2) is below min_critical_recall 100.0% by 50.0 points",
            "acceptable share 62.5% (5 of 8) is below min_acceptable 95.0% by 32.5 points",
        ]
    );
    assert!(!report.passed());
    let lenient = EvalConfig {
        min_critical_recall: 0.5,
        min_acceptable: 0.625,
    };
    assert!(
        report_of(&eight(), &lenient).passed(),
        "exactly at the thresholds passes"
    );
}

#[test]
fn precision_recall_and_f1_per_category_are_exact() {
    let report = report_of(&eight(), &EvalConfig::default());
    let names: Vec<&str> = report
        .categories
        .iter()
        .map(|c| c.category.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "question",
            "complaint",
            "compliment",
            "press",
            "crisis",
            "spam"
        ]
    );
    let score = |c: Category| {
        report
            .categories
            .iter()
            .find(|s| s.category == c)
            .unwrap_or_else(|| panic!("{c} has a row"))
    };
    let question = score(Category::Question);
    assert_eq!(
        (question.labelled, question.predicted, question.correct),
        (3, 3, 2)
    );
    assert!(close(question.precision, 2.0 / 3.0) && close(question.recall, 2.0 / 3.0));
    assert!(close(question.f1, 2.0 / 3.0));
    assert_eq!((question.acceptable.count, question.acceptable.of), (2, 3));
    let compliment = score(Category::Compliment);
    assert_eq!(
        (
            compliment.labelled,
            compliment.predicted,
            compliment.correct
        ),
        (1, 2, 1)
    );
    assert!(close(compliment.precision, 0.5) && close(compliment.recall, 1.0));
    assert!(close(compliment.f1, 2.0 / 3.0));
    // Never predicted: no precision, so no F1; recall is 0.
    let press = score(Category::Press);
    assert_eq!((press.precision, press.f1), (None, None));
    assert!(close(press.recall, 0.0));
    let crisis = score(Category::Crisis);
    assert!(close(crisis.precision, 1.0) && close(crisis.recall, 1.0) && close(crisis.f1, 1.0));
}

#[test]
fn the_confusion_matrix_counts_label_against_prediction() {
    use Category::*;
    let report = report_of(&eight(), &EvalConfig::default());
    let m = &report.confusion;
    assert_eq!(
        m.labels,
        [Question, Complaint, Compliment, Press, Crisis, Spam]
    );
    assert_eq!(
        m.predicted,
        [
            Question, Complaint, Compliment, Press, Crisis, Spam, Unknown
        ]
    );
    assert_eq!(m.count(Question, Question), 2);
    assert_eq!(m.count(Question, Unknown), 1);
    assert_eq!(m.count(Press, Question), 1);
    assert_eq!(m.count(Complaint, Compliment), 1);
    assert_eq!(m.count(Complaint, Complaint), 0);
    let total: usize = m.counts.iter().flatten().sum();
    assert_eq!(total, 8);
}

#[test]
fn misses_are_listed_with_what_was_decided_and_why() {
    let report = report_of(&eight(), &EvalConfig::default());
    assert_eq!(report.critical_misses.len(), 1);
    let press = &report.critical_misses[0];
    assert_eq!(
        (press.line, press.label, press.fault),
        (4, Category::Press, Fault::Answered)
    );
    assert_eq!(press.decided(), "answer with `opening_hours`");
    assert_eq!(press.acceptable, "escalate to `communications`");
    assert_eq!(press.why, ["seen as question"]);
    let others: Vec<(usize, Fault)> = report
        .other_misses
        .iter()
        .map(|m| (m.line, m.fault))
        .collect();
    assert_eq!(others, [(2, Fault::WrongAnswer), (7, Fault::Unanswered)]);
    assert_eq!(report.other_misses_left_out, 0);

    let languages: Vec<(&str, usize, usize)> = report
        .languages
        .iter()
        .map(|l| (l.lang.as_str(), l.acceptable.count, l.acceptable.of))
        .collect();
    assert_eq!(
        languages,
        [("nl", 2, 5), ("de", 1, 1), ("en", 1, 1), ("none", 1, 1)]
    );
}

#[test]
fn other_misses_are_capped_and_the_rest_counted() {
    let pairs: Vec<(Example, Decision)> = (0..OTHER_MISSES_SHOWN + 7)
        .map(|i| {
            let mut e = example(Category::Complaint, None, None);
            e.line = i + 1;
            (e, decision(Action::Log, Category::Unknown))
        })
        .collect();
    let report = report_of(&pairs, &EvalConfig::default());
    assert_eq!(report.other_misses.len(), OTHER_MISSES_SHOWN);
    assert_eq!(report.other_misses_left_out, 7);
    assert_eq!(report.critical_recall.share, None);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("critical recall is not measured")),
        "{:?}",
        report.warnings
    );
    // Nothing critical to measure fails no threshold; the acceptable share does.
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(report.failures[0].starts_with("acceptable share 0.0% (0 of 57)"));
}

#[test]
fn a_label_naming_a_topic_the_rulebook_lacks_is_warned_about() {
    let pairs = vec![(
        example(Category::Question, Some("ferry"), Some("nl")),
        decision(escalate("webcare", Priority::Low), Category::Unknown),
    )];
    let report = report_of(&pairs, &EvalConfig::default());
    assert!(
        report.warnings.iter().any(|w| w.contains("`ferry` (1)")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn nineteen_of_twenty_meets_a_minimum_of_95_percent() {
    let pairs: Vec<(Example, Decision)> = (0..20)
        .map(|i| {
            let action = if i == 0 {
                Action::Log
            } else {
                escalate("webcare", Priority::Low)
            };
            (
                example(Category::Complaint, None, None),
                decision(action, Category::Complaint),
            )
        })
        .collect();
    let report = report_of(&pairs, &EvalConfig::default());
    assert_eq!(report.acceptable.count, 19);
    assert!(report.passed(), "{:?}", report.failures);
}

#[test]
fn the_table_and_the_page_show_the_figures_and_escape_the_text() {
    let mut pairs = eight();
    pairs[3].0.text = "<script>alert('pers')</script>".to_owned();
    let report = report_of(&pairs, &EvalConfig::default());
    let table = report.to_table();
    assert!(
        table.contains("acceptable decisions       5 of 8       62.5%"),
        "{table}"
    );
    assert!(
        table.contains(
            "critical recall            1 of 2       50.0%   min_critical_recall 100.0%: FAILED"
        ),
        "{table}"
    );
    assert!(
        table.contains(
            "question           3         3       2     66.7%   66.7%  0.667      2 of 3      66.7%"
        ),
        "{table}"
    );
    assert!(
        table.contains("  line 4: press (lang nl) \"<script>alert('pers')</script>\""),
        "{table}"
    );
    assert!(
        table
            .contains("    problem: answered by the bot; acceptable: escalate to `communications`"),
        "{table}"
    );
    assert!(
        table.trim_end().ends_with("by 32.5 points"),
        "the verdict is last: {table}"
    );

    let page = report.to_html();
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    assert_eq!(page.matches("<html").count(), 1);
    assert!(!page.contains("<script"), "customer text is escaped");
    assert!(page.contains("&lt;script&gt;alert(&#39;pers&#39;)"));
    assert!(
        page.contains("<td class=\"n diag\">2</td>"),
        "the diagonal is marked"
    );
}

#[test]
fn the_embedded_rulebook_names_the_template_of_each_topic() -> Result<(), crate::RulebookErrors> {
    let rulebook = Rulebook::embedded()?;
    let topics = TopicTemplates::from_rulebook(&rulebook);
    assert_eq!(
        topics.answering("passport"),
        ["passport", "passport_lost"],
        "a sub-topic counts"
    );
    assert_eq!(topics.answering("street_lights"), ["report_street_lights"]);
    assert!(topics.knows("press") && topics.answering("press").is_empty());
    Ok(())
}
