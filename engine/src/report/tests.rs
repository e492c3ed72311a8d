//! The figures are exact on a generated history whose answers are known in advance.
//!
//! 1,000 messages, one every ten minutes from Monday 2 November 2026 00:00 UTC, each in its own
//! conversation; `k = i % 10` decides what happens to message `i`:
//!
//! | k | decision | replies | escalation |
//! |---|---|---|---|
//! | 0–2 | answer, topic `afval` | bot after 10·(k+1) s | – |
//! | 3–5 | answer, topic `paspoort` | bot after 10·(k+1) s | – |
//! | 6 | escalate `kcc` normal, `klacht`, negative | holding 5 s; human 2 h (even `i/10`) or 5 h | resolved 1 h after the human reply; deadline 4 h |
//! | 7 | escalate `hub` high, `storing` | holding 5 s | resolved after 1 h; deadline 2 h |
//! | 8 | log, `compliment`, positive | – | – |
//! | 9 | escalate `kcc` urgent, `dreiging`, negative, no holding reply | human 30 min when `i < 500`, else none | open; deadline 1 h |
//!
//! Plus 100 `afval` answers in the week before (the previous period), and for the `afval`
//! answers with `k = 0` and `i ≥ 500` a follow-up from the customer an hour after the period.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};

use super::*;
use crate::case::ConversationFacts;
use crate::decision::{
    Category, Decision, Diagnostics, Language, Priority, Sentiment, SentimentLabel, TopicMatch,
};
use crate::message::Inbound;
use crate::mode::Mode;
use crate::store::EscalationEvent;
use crate::teams::SlaClock;

fn since() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()
}

fn until() -> DateTime<Utc> {
    since() + Duration::days(7)
}

fn teams() -> Teams {
    let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
    let five = NaiveTime::from_hms_opt(17, 0, 0).unwrap();
    let weekday = vec![(nine, five)];
    let team = |id: &str, hours| Team {
        id: id.into(),
        name: id.into(),
        name_en: id.into(),
        hours,
        holidays: Default::default(),
        sla: [480, 240, 120, 60],
        sla_clock: SlaClock::Calendar,
        chain: Vec::new(),
        members: Vec::new(),
    };
    Teams::new(
        chrono_tz::UTC,
        vec![
            team("hub", None),
            team(
                "kcc",
                Some([
                    weekday.clone(),
                    weekday.clone(),
                    weekday.clone(),
                    weekday.clone(),
                    weekday,
                    Vec::new(),
                    Vec::new(),
                ]),
            ),
        ],
    )
}

fn message(
    i: usize,
    at: DateTime<Utc>,
    action: Action,
    topic: &str,
    category: Category,
    sentiment: SentimentLabel,
    version: &str,
) -> StoredMessage {
    let channel = if i.is_multiple_of(2) {
        ChannelKind::Webchat
    } else {
        ChannelKind::Telegram
    };
    StoredMessage {
        seq: i as u64,
        message: Inbound {
            id: format!("m{i}"),
            channel,
            conversation: format!("c{i}"),
            author: format!("a{i}"),
            text: "…".into(),
            received_at: at,
            metadata: Default::default(),
        },
        decision: Decision {
            message_id: format!("m{i}"),
            action,
            diagnostics: Diagnostics {
                category,
                topics: vec![TopicMatch {
                    topic: topic.into(),
                    category,
                    matched: Vec::new(),
                }],
                rules: Vec::new(),
                script_errors: Vec::new(),
                sentiment: Sentiment {
                    label: sentiment,
                    score: 0,
                },
                language: Language::Nl,
                rulebook: version.into(),
                reasons: Vec::new(),
            },
        },
        facts: ConversationFacts::default(),
        stored_at: at,
        mode: Default::default(),
        shadow: None,
    }
}

fn answer() -> Action {
    Action::Answer {
        template: "t".into(),
        reply: "r".into(),
    }
}

fn escalate(team: &str, priority: Priority, holding: bool) -> Action {
    Action::Escalate {
        team: team.into(),
        priority,
        template: holding.then(|| "h".into()),
        reply: holding.then(|| "we komen erop terug".into()),
    }
}

struct History {
    messages: Vec<StoredMessage>,
    escalations: Vec<Escalation>,
    replies: Vec<Reply>,
}

fn reply(m: &StoredMessage, after: Duration, human: bool) -> Reply {
    Reply {
        channel: m.message.channel,
        conversation: m.message.conversation.clone(),
        in_reply_to: m.message.id.clone(),
        at: m.message.received_at + after,
        human,
        dead: false,
    }
}

fn escalation(
    m: &StoredMessage,
    id: u64,
    team: &str,
    priority: Priority,
    deadline: Duration,
    resolved: Option<Duration>,
) -> Escalation {
    let at = m.message.received_at;
    let mut history = vec![EscalationEvent {
        at,
        actor: "engine".into(),
        change: "opened".into(),
    }];
    let status = match resolved {
        Some(after) => {
            history.push(EscalationEvent {
                at: at + after,
                actor: "agent".into(),
                change: "resolved".into(),
            });
            EscalationStatus::Resolved { by: "agent".into() }
        }
        None => EscalationStatus::Open,
    };
    Escalation {
        id,
        channel: m.message.channel,
        conversation: m.message.conversation.clone(),
        team: team.into(),
        priority,
        reason: "r".into(),
        status,
        created_at: at,
        sla_deadline: Some(at + deadline),
        messages: vec![m.message.id.clone()],
        history,
        // Escalations as stored before the case state existed: the report falls back to the
        // deadline and the conversation's replies.
        case: Default::default(),
    }
}

fn history() -> History {
    let mut h = History {
        messages: Vec::new(),
        escalations: Vec::new(),
        replies: Vec::new(),
    };
    let week_before = since() - Duration::days(7);
    for j in 0..100 {
        let m = message(
            10_000 + j,
            week_before + Duration::hours(j as i64),
            answer(),
            "afval",
            Category::Question,
            SentimentLabel::Neutral,
            "v0",
        );
        h.replies.push(reply(&m, Duration::seconds(10), false));
        h.messages.push(m);
    }
    for i in 0..1000usize {
        let at = since() + Duration::minutes(10 * i as i64);
        let version = if i < 500 { "v1" } else { "v2" };
        let k = i % 10;
        let (action, topic, category, sentiment) = match k {
            0..=2 => (
                answer(),
                "afval",
                Category::Question,
                SentimentLabel::Neutral,
            ),
            3..=5 => (
                answer(),
                "paspoort",
                Category::Question,
                SentimentLabel::Neutral,
            ),
            6 => (
                escalate("kcc", Priority::Normal, true),
                "klacht",
                Category::Complaint,
                SentimentLabel::Negative,
            ),
            7 => (
                escalate("hub", Priority::High, true),
                "storing",
                Category::Report,
                SentimentLabel::Neutral,
            ),
            8 => (
                Action::Log,
                "compliment",
                Category::Compliment,
                SentimentLabel::Positive,
            ),
            _ => (
                escalate("kcc", Priority::Urgent, false),
                "dreiging",
                Category::Abuse,
                SentimentLabel::Negative,
            ),
        };
        let m = message(i, at, action, topic, category, sentiment, version);
        let id = i as u64;
        match k {
            0..=5 => {
                h.replies
                    .push(reply(&m, Duration::seconds(10 * (k as i64 + 1)), false));
                if k == 0 && i >= 500 {
                    let mut again = message(
                        20_000 + i,
                        until() + Duration::hours(1),
                        answer(),
                        "afval",
                        Category::Question,
                        SentimentLabel::Neutral,
                        "v2",
                    );
                    again.message.conversation = m.message.conversation.clone();
                    again.message.channel = m.message.channel;
                    h.messages.push(again);
                }
            }
            6 => {
                let human = if (i / 10).is_multiple_of(2) {
                    Duration::hours(2)
                } else {
                    Duration::hours(5)
                };
                h.replies.push(reply(&m, Duration::seconds(5), false));
                h.replies.push(reply(&m, human, true));
                h.escalations.push(escalation(
                    &m,
                    id,
                    "kcc",
                    Priority::Normal,
                    Duration::hours(4),
                    Some(human + Duration::hours(1)),
                ));
            }
            7 => {
                h.replies.push(reply(&m, Duration::seconds(5), false));
                h.escalations.push(escalation(
                    &m,
                    id,
                    "hub",
                    Priority::High,
                    Duration::hours(2),
                    Some(Duration::hours(1)),
                ));
            }
            8 => {}
            _ => {
                if i < 500 {
                    h.replies.push(reply(&m, Duration::minutes(30), true));
                }
                h.escalations.push(escalation(
                    &m,
                    id,
                    "kcc",
                    Priority::Urgent,
                    Duration::hours(1),
                    None,
                ));
            }
        }
        h.messages.push(m);
    }
    h
}

fn options() -> ReportOptions {
    ReportOptions::new(since(), until(), until() + Duration::days(30))
}

fn run(options: &ReportOptions) -> Report {
    let h = history();
    build(
        options,
        &teams(),
        "hub",
        h.messages,
        &h.escalations,
        &h.replies,
    )
}

/// The office seconds by the definition, minute by minute, as an oracle independent of
/// [`office_seconds`].
fn office_by_minute(team: &Team, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    let mut t = from;
    let mut minutes = 0;
    while t < to {
        if team.is_open(t.with_timezone(&chrono_tz::UTC)) {
            minutes += 1;
        }
        t += Duration::minutes(1);
    }
    minutes * 60
}

#[test]
fn every_figure_is_exact_on_a_known_history() {
    let r = run(&options());
    assert_eq!(r.messages, 1000);
    assert_eq!(r.previous_messages, 100);
    assert_eq!(r.rates.automated, 600);
    assert_eq!(r.rates.escalated, 300);
    assert_eq!(r.rates.logged, 100);
    assert_eq!(r.rates.automation_pct, 60.0);
    assert_eq!(r.rates.escalation_pct, 30.0);
    assert_eq!(r.rates.log_pct, 10.0);

    // Unanswered: the urgent escalations without a holding reply nobody answered.
    let unanswered: Vec<&str> = r.unanswered.iter().map(|u| u.id.as_str()).collect();
    let expected: Vec<String> = (500..1000)
        .filter(|i| i % 10 == 9)
        .map(|i| format!("m{i}"))
        .collect();
    assert_eq!(unanswered, expected);

    // Bot: 200 × 5 s, then 100 each of 10 … 60 s; rank 400 is 20 s, rank 720 is 60 s.
    assert_eq!(r.frt_bot.calendar.count, 800);
    assert_eq!(r.frt_bot.calendar.median_secs, Some(20));
    assert_eq!(r.frt_bot.calendar.p90_secs, Some(60));
    assert_eq!(r.frt_bot.office, r.frt_bot.calendar, "the hub is open 24/7");

    // Human: 50 × 30 min, 50 × 2 h, 50 × 5 h.
    assert_eq!(r.frt_human.calendar.count, 150);
    assert_eq!(r.frt_human.calendar.median_secs, Some(7200));
    assert_eq!(r.frt_human.calendar.p90_secs, Some(18_000));
    // Resolution: 100 × 1 h (hub), 50 × 3 h, 50 × 6 h (kcc).
    assert_eq!(r.resolution.calendar.count, 200);
    assert_eq!(r.resolution.calendar.median_secs, Some(3600));
    assert_eq!(r.resolution.calendar.p90_secs, Some(21_600));

    // Office time of the human responses, against a minute-by-minute count.
    let teams = teams();
    let kcc = teams.get("kcc").unwrap();
    let mut office: Vec<i64> = (0..1000usize)
        .filter_map(|i| {
            let at = since() + Duration::minutes(10 * i as i64);
            match i % 10 {
                6 if (i / 10).is_multiple_of(2) => Some((at, Duration::hours(2))),
                6 => Some((at, Duration::hours(5))),
                9 if i < 500 => Some((at, Duration::minutes(30))),
                _ => None,
            }
        })
        .map(|(at, after)| office_by_minute(kcc, at, at + after))
        .collect();
    office.sort_unstable();
    assert_eq!(r.frt_human.office.median_secs, Some(office[74]));
    assert_eq!(r.frt_human.office.p90_secs, Some(office[134]));
    assert!(office[134] < 18_000, "nights and the weekend do not count");

    assert_eq!(r.escalations, 300);
    let sla: Vec<(&str, Priority, u64, u64, u64)> = r
        .sla
        .iter()
        .map(|s| (s.team.as_str(), s.priority, s.met, s.breached, s.pending))
        .collect();
    assert_eq!(
        sla,
        vec![
            ("hub", Priority::High, 100, 0, 0),
            ("kcc", Priority::Normal, 50, 50, 0),
            ("kcc", Priority::Urgent, 50, 50, 0),
        ]
    );
    assert_eq!(r.sla_totals(), (200, 100, 0));

    // 600 answers and 200 resolutions; 50 customers wrote again within the week.
    let f = &r.first_time_resolution;
    assert_eq!(
        (f.cases, f.resolved_first_time, f.not_yet_known),
        (800, 750, 0)
    );
    assert_eq!(f.pct, Some(93.8));

    assert_eq!(r.sentiment["negative"], 200);
    assert_eq!(r.sentiment["neutral"], 700);
    assert_eq!(r.sentiment["positive"], 100);
    assert_eq!(r.by_channel["webchat"], 500);
    assert_eq!(r.by_channel["telegram"], 500);
    assert_eq!(r.by_category["question"], 600);
    assert_eq!(r.by_category["complaint"], 100);
    assert_eq!(r.by_category["report"], 100);
    assert_eq!(r.by_category["compliment"], 100);
    assert_eq!(r.by_category["abuse"], 100);
    assert_eq!(r.by_team["(bot)"], 700);
    assert_eq!(r.by_team["kcc"], 200);
    assert_eq!(r.by_team["hub"], 100);
    assert_eq!(r.by_topic["afval"], 300);
    assert_eq!(r.by_topic["paspoort"], 300);

    // 144 messages a day for six days, 136 on the seventh.
    assert_eq!(r.granularity, Granularity::Day);
    let volume: Vec<u64> = r.volume.iter().map(|b| b.messages).collect();
    assert_eq!(volume, vec![144, 144, 144, 144, 144, 144, 136]);
    assert_eq!(r.volume.iter().map(|b| b.negative).sum::<u64>(), 200);

    let versions: Vec<(&str, u64)> = r
        .rulebook_versions
        .iter()
        .map(|v| (v.version.as_str(), v.messages))
        .collect();
    assert_eq!(versions, vec![("v1", 500), ("v2", 500)]);

    let trending: Vec<(&str, Option<f64>)> = r
        .trending
        .iter()
        .map(|t| (t.topic.as_str(), t.growth_pct))
        .collect();
    assert_eq!(
        trending,
        vec![
            ("paspoort", None),
            ("compliment", None),
            ("dreiging", None),
            ("klacht", None),
            ("storing", None),
            ("afval", Some(200.0)),
        ]
    );
    assert_eq!(r.top_topics[0].topic, "afval", "ties go alphabetically");
    assert_eq!(r.top_topics[0].previous, 100);

    // Enough messages, but two rulebook versions and unanswered messages are worth a warning.
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("2 rulebook versions"));
    assert!(r.warnings[1].contains("50 messages got no reply"));
}

#[test]
fn csv_fields_with_commas_quotes_and_newlines_read_back_whole() {
    let mut r = run(&options());
    let awkward = "topic \"afval, oost\"\nsecond line";
    r.warnings.push(awkward.to_owned());
    let csv = render::csv(&r);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert!(records.iter().all(|r| r.len() == 3), "three fields each");
    assert!(
        records
            .iter()
            .any(|r| &r[0] == "warning" && r[1].is_empty() && &r[2] == awkward),
        "{csv}"
    );
}

#[test]
fn the_printed_forms_carry_the_same_figures() {
    let r = run(&options());
    let csv = render::csv(&r);
    for line in [
        "period,messages,1000",
        "rates,automation_pct,60.0",
        "rates,escalation_pct,30.0",
        "rates,log_pct,10.0",
        "rates,unanswered,50",
        "frt_bot,calendar_median_secs,20",
        "frt_bot,calendar_p90_secs,60",
        "frt_human,calendar_median_secs,7200",
        "frt_human,calendar_p90_secs,18000",
        "resolution,calendar_p90_secs,21600",
        "sla_met,kcc/normal,50",
        "sla_breached,kcc/urgent,50",
        "ftr,resolved_first_time,750",
        "sentiment,negative,200",
        "trending,afval,200.0",
        "rulebook_version,v1,500",
    ] {
        assert!(csv.lines().any(|l| l == line), "`{line}` missing in\n{csv}");
    }
    let table = render::table(&r);
    for text in [
        "based on 1000 messages",
        "60.0%",
        "unanswered                  50",
        "median      20s  p90   1m 00s",
        "median   2h 00m  p90   5h 00m",
        "met 200, breached 100, pending 0",
        "750 of 800 cases = 93.8%",
        "v1 (500 messages), v2 (500 messages)",
    ] {
        assert!(table.contains(text), "`{text}` missing in\n{table}");
    }
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["messages"], 1000);
    assert_eq!(json["frt_human"]["calendar"]["p90_secs"], 18_000);
    assert_eq!(json["unanswered"].as_array().unwrap().len(), 50);
}

#[test]
fn decisions_not_acted_on_are_neither_automated_nor_unanswered() {
    let mut h = history();
    let at = since() + Duration::hours(1);
    let mut extra = Vec::new();
    for (i, mode, action) in [
        (20_000, Mode::Listen, answer()),
        (
            20_001,
            Mode::Listen,
            escalate("kcc", Priority::Normal, true),
        ),
        (20_002, Mode::Shadow, answer()),
        // A shadow escalation reaches the inbox: with no human reply it is unanswered.
        (
            20_003,
            Mode::Shadow,
            escalate("kcc", Priority::Normal, true),
        ),
    ] {
        let mut m = message(
            i,
            at,
            action,
            "afval",
            Category::Question,
            SentimentLabel::Neutral,
            "v1",
        );
        m.mode = mode;
        extra.push(m);
    }
    h.messages.extend(extra);
    h.messages.sort_by_key(|m| m.message.received_at);
    let base = run(&options());
    let r = build(
        &options(),
        &teams(),
        "hub",
        h.messages,
        &h.escalations,
        &h.replies,
    );
    assert_eq!(r.messages, base.messages + 4);
    assert_eq!(r.rates.automated, base.rates.automated);
    assert_eq!(r.rates.escalated, base.rates.escalated + 1);
    assert_eq!(r.rates.not_acted, 3);
    let unanswered: Vec<&str> = r.unanswered.iter().map(|u| u.id.as_str()).collect();
    assert!(unanswered.contains(&"m20003"), "{unanswered:?}");
    assert!(
        !unanswered
            .iter()
            .any(|id| ["m20000", "m20001", "m20002"].contains(id)),
        "{unanswered:?}"
    );
    let table = render::table(&r);
    assert!(
        table.contains(&format!("  not acted on           {:>7}", 3)),
        "{table}"
    );
}

#[test]
fn filters_narrow_every_figure() {
    let mut o = options();
    o.channel = Some(ChannelKind::Webchat);
    let r = run(&o);
    assert_eq!(r.messages, 500);
    assert_eq!(r.by_channel.len(), 1);
    // Even i only: k ∈ {0, 2, 4, 6, 8}.
    assert_eq!(
        (r.rates.automated, r.rates.escalated, r.rates.logged),
        (300, 100, 100)
    );

    let mut o = options();
    o.team = Some("kcc".into());
    let r = run(&o);
    assert_eq!(r.messages, 200);
    assert_eq!(r.escalations, 200);
    assert_eq!(r.previous_messages, 0);
    assert!(r.sla.iter().all(|s| s.team == "kcc"));
}

#[test]
fn a_small_period_warns_and_an_open_window_is_not_yet_known() {
    let mut o = options();
    o.until = since() + Duration::hours(5);
    o.now = o.until;
    // What the store would hold at `now`: no reply or resolution from the future.
    let mut h = history();
    h.replies.retain(|r| r.at <= o.now);
    for esc in &mut h.escalations {
        if esc.history.iter().any(|e| e.at > o.now) {
            esc.history.retain(|e| e.at <= o.now);
            esc.status = EscalationStatus::Open;
        }
    }
    let r = build(&o, &teams(), "hub", h.messages, &h.escalations, &h.replies);
    assert_eq!(r.messages, 30);
    assert!(
        r.warnings[0].contains("only 30 messages"),
        "{:?}",
        r.warnings
    );
    assert_eq!(r.first_time_resolution.cases, 0);
    assert!(r.first_time_resolution.not_yet_known > 0);
    // m26 (kcc normal, 04:20) is not answered yet and its deadline (08:20) has not passed.
    assert!(r.sla.iter().any(|s| s.pending > 0), "{:?}", r.sla);
    assert!(
        r.unanswered.iter().all(|u| u.action == "escalate"),
        "{:?}",
        r.unanswered
    );
}

#[test]
fn office_time_skips_nights_weekends_and_holidays() {
    let teams = teams();
    let friday_four = Utc.with_ymd_and_hms(2026, 11, 6, 16, 0, 0).unwrap();
    let monday_ten = Utc.with_ymd_and_hms(2026, 11, 9, 10, 0, 0).unwrap();
    let kcc = teams.get("kcc").unwrap();
    assert_eq!(
        office_seconds(kcc, chrono_tz::UTC, friday_four, monday_ten),
        2 * 3600
    );
    let mut closed_monday = kcc.clone();
    closed_monday.holidays.insert(monday_ten.date_naive());
    assert_eq!(
        office_seconds(&closed_monday, chrono_tz::UTC, friday_four, monday_ten),
        3600
    );
    assert_eq!(
        office_seconds(kcc, chrono_tz::UTC, monday_ten, friday_four),
        0
    );
}

#[test]
fn the_html_page_is_self_contained_and_escapes_what_it_shows() {
    let mut h = history();
    h.messages[150].decision.diagnostics.topics[0].topic = "<script>alert(1)</script>".into();
    let r = build(
        &options(),
        &teams(),
        "hub",
        h.messages,
        &h.escalations,
        &h.replies,
    );
    for preset in [
        html::Preset::Full,
        html::Preset::Weekly,
        html::Preset::Quarterly,
    ] {
        let page = html::page(&r, preset);
        assert!(!page.contains("<script"), "customer text became markup");
        assert!(!page.contains("http://") || !page.contains("src=\"http"));
        assert!(!page.contains("<link"));
        for id in ["chart-volume", "chart-frt", "chart-sla", "chart-topics"] {
            assert!(page.contains(&format!("id=\"{id}\"")), "{id} missing");
        }
        assert!(page.contains("Based on <b id=\"based-on\">1000</b> messages"));
    }
}

/// The one-pass read ([`gather::report`]) gives the same report as reading every message in full
/// and every conversation's outbox ([`gather::gather`] and [`build`]), on a store with every kind
/// of reply: queued, sent, given up, retried, an agent's, and escalations resolved and open.
#[test]
fn the_one_pass_read_matches_the_full_read() {
    use crate::store::{self, StoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&StoreOptions {
        data_dir: dir.path().to_path_buf(),
        ..StoreOptions::default()
    })
    .unwrap();
    let rulebook = crate::Rulebook::embedded().unwrap();
    let intake = crate::Intake::new(&rulebook, &*store);
    let texts = [
        "Wat zijn de openingstijden van het stadskantoor?",
        "Ik heb een klacht over de afvalinzameling",
        "Er is brand in de flat aan de Dorpsstraat!",
        "Bedankt voor de snelle hulp!",
        "Hoe vraag ik een parkeervergunning aan?",
    ];
    let start = since() - Duration::days(7);
    for i in 0..300i64 {
        let at = start + Duration::minutes(67 * i);
        let mut m = Inbound::from_text(
            format!("m{i}"),
            ChannelKind::Telegram,
            texts[(i % 5) as usize],
            at,
        );
        m.conversation = format!("c{}", i / 4);
        m.author = format!("a{}", i / 4);
        let receipt = intake.accept(m, at).unwrap();
        if let Some(id) = receipt.outbox {
            match i % 7 {
                0..=2 => {
                    store.outbox_sent(id, at + Duration::seconds(i)).unwrap();
                }
                3 => {
                    store.outbox_failed(id, "gone", None, at).unwrap();
                }
                4 => {
                    store
                        .outbox_failed(id, "429", Some(at + Duration::minutes(5)), at)
                        .unwrap();
                }
                _ => {}
            }
        }
        if let Some(esc) = receipt.escalation
            && i % 3 == 0
        {
            // A person's reply on the escalation: its own first response.
            let Ok((_, reply)) = store.reply_to_escalation(
                esc,
                "agent",
                "Ik kijk ernaar.",
                at + Duration::minutes(30),
            ) else {
                continue;
            };
            if i % 2 == 0 {
                store
                    .outbox_sent(reply.id, at + Duration::minutes(31))
                    .unwrap();
            }
            if i % 4 == 0
                && let Ok(resolved) =
                    store.resolve_escalation(esc, "agent", at + Duration::hours(2))
            {
                assert_eq!(resolved.id, esc);
            }
        }
    }
    let options = ReportOptions::new(since(), since() + Duration::days(7), until());
    let teams = rulebook.teams();
    let fast = gather::report(&*store, &options, teams, &rulebook.default_team).unwrap();
    let g = gather::gather(&*store, &options).unwrap();
    let slow = build(
        &options,
        teams,
        &rulebook.default_team,
        g.messages,
        &g.escalations,
        &g.replies,
    );
    // Samples feed a histogram; their order follows the read order.
    let normal = |mut r: Report| {
        for t in [&mut r.frt_bot, &mut r.frt_human, &mut r.resolution] {
            t.samples.sort_unstable();
        }
        r
    };
    let (fast, slow) = (normal(fast), normal(slow));
    assert!(fast.messages > 100 && fast.escalations > 10, "{fast:?}");
    assert!(fast.frt_human.calendar.count > 0, "{fast:?}");
    assert_eq!(fast, slow);
}

/// A reply an agent sends from the inbox on an escalation is a human first response, like one
/// written into the conversation.
#[test]
fn an_inbox_reply_on_an_escalation_is_a_human_response() {
    use crate::store::{self, StoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&StoreOptions {
        data_dir: dir.path().to_path_buf(),
        ..StoreOptions::default()
    })
    .unwrap();
    let rulebook = crate::Rulebook::embedded().unwrap();
    let at = since() + Duration::hours(10);
    let m = Inbound::from_text(
        "k1",
        ChannelKind::Telegram,
        "Ik heb een klacht over de afvalinzameling",
        at,
    );
    let receipt = crate::Intake::new(&rulebook, &*store)
        .accept(m, at)
        .unwrap();
    let esc = receipt.escalation.expect("a complaint is escalated");
    store
        .reply_to_escalation(
            esc,
            "anna",
            "Wij kijken ernaar.",
            at + Duration::minutes(30),
        )
        .unwrap();
    let options = ReportOptions::new(since(), until(), until());
    let r = gather::report(&*store, &options, rulebook.teams(), &rulebook.default_team).unwrap();
    assert_eq!(r.frt_human.calendar.count, 1, "{:?}", r.frt_human);
    assert_eq!(r.frt_human.calendar.median_secs, Some(30 * 60));
}
