//! Reports on PostgreSQL: the database counts the previous period and aggregates the period
//! itself (`Store::report_count`, `Store::report_period`), and every figure must be the one the
//! scanning report gives, office hours, weekends and holidays included. Against a real server
//! this binary starts (`support/postgres.rs`).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, OnceLock};

use chrono::{Duration, NaiveTime, TimeZone, Utc};
use webcare_engine::report::{self, Builder, Percentiles, ReportOptions, gather, spike};
use webcare_engine::store::period::PeriodCounted;
use webcare_engine::store::{self, Backend, StoreOptions};
use webcare_engine::teams::{Team, Teams};
use webcare_engine::{ChannelKind, Inbound, Intake, Rulebook, Store};

#[path = "support/postgres.rs"]
mod pg;

fn cluster() -> &'static pg::Cluster {
    static CLUSTER: OnceLock<pg::Cluster> = OnceLock::new();
    CLUSTER.get_or_init(pg::Cluster::start)
}

fn rulebook() -> &'static Rulebook {
    static RULEBOOK: OnceLock<Rulebook> = OnceLock::new();
    RULEBOOK.get_or_init(|| Rulebook::embedded().expect("the embedded rulebook loads"))
}

const QUESTION: &str = "Wat zijn de openingstijden van het stadskantoor?";
const FIRE: &str = "Er is brand in de flat aan de Dorpsstraat!";
const COMPLAINT: &str = "Ik heb een klacht over de afvalinzameling";

fn new_store() -> Arc<dyn Store> {
    store::open(&StoreOptions {
        backend: Backend::Postgres,
        data_dir: "unused".into(),
        redact: false,
        cache_bytes: None,
        url: Some(cluster().new_database()),
    })
    .unwrap()
}

/// What the database aggregates for the period of `options`, asked as the report asks; `None`
/// when it declines (and the report would scan).
fn aggregated(store: &dyn Store, options: &ReportOptions, teams: &Teams) -> Option<PeriodCounted> {
    let escalations = store.open_escalations().unwrap();
    let mut builder = Builder::new(options, teams, &rulebook().default_team, &escalations);
    let query = builder.period_query(&Default::default())?;
    store.report_period(&query, &mut |_| {}).unwrap()
}

/// A report on PostgreSQL lets the database count the previous period (`report_count`) and
/// aggregate the period itself (`report_period`) instead of handing their messages over; every
/// figure must be the one the scanning report gives
/// (every message read in full, one outbox read per conversation, `report::build`), with and
/// without the report's filters, on a history of two channels, every kind of reply, resolved
/// and open escalations and the early warning's own alerts.
#[test]
fn a_report_aggregated_by_the_database_equals_the_scanning_report() {
    use webcare_engine::store::CountFilter;
    let store = new_store();
    let rulebook = rulebook();
    let intake = Intake::new(rulebook, &*store);
    let texts = [
        QUESTION,
        COMPLAINT,
        FIRE,
        "Bedankt voor de snelle hulp!",
        "Hoe vraag ik een parkeervergunning aan?",
        "De lantaarnpaal in onze straat is kapot en het afval is niet opgehaald",
    ];
    let since = Utc.with_ymd_and_hms(2026, 11, 16, 0, 0, 0).unwrap();
    let until = since + Duration::days(7);
    let start = since - Duration::days(7);
    let mut previous = (0u64, 0u64); // all messages, Telegram's
    for i in 0..460i64 {
        let at = start + Duration::minutes(53 * i);
        let channel = match i % 3 {
            0 => ChannelKind::Webchat,
            _ => ChannelKind::Telegram,
        };
        let mut m = Inbound::from_text(format!("m{i}"), channel, texts[(i % 6) as usize], at);
        m.conversation = format!("c{}", i / 4);
        m.author = match i % 29 {
            0 => spike::ALERT_AUTHOR.to_owned(),
            _ => format!("a{}", i / 4),
        };
        if at < since && i % 29 != 0 {
            previous.0 += 1;
            previous.1 += u64::from(channel == ChannelKind::Telegram);
        }
        let receipt = intake.accept(m, at).unwrap();
        if let Some(id) = receipt.outbox {
            match i % 7 {
                0..=2 => drop(store.outbox_sent(id, at + Duration::seconds(i)).unwrap()),
                3 => drop(store.outbox_failed(id, "gone", None, at).unwrap()),
                _ => {}
            }
        }
        if let Some(esc) = receipt.escalation
            && i % 3 == 0
            && let Ok((_, reply)) = store.reply_to_escalation(
                esc,
                "agent",
                "Ik kijk ernaar.",
                at + Duration::minutes(30),
            )
        {
            store
                .outbox_sent(reply.id, at + Duration::minutes(31))
                .unwrap();
            if i % 2 == 0 {
                let _ = store.resolve_escalation(esc, "agent", at + Duration::hours(2));
            }
        }
    }
    assert!(previous.0 > 100 && previous.1 > 50, "{previous:?}");

    // The database counts what the builder would: the alerts left out, the filters applied.
    let count = |channel| {
        let filter = CountFilter {
            channel,
            team: None,
            except_author: spike::ALERT_AUTHOR,
        };
        let counted = store
            .report_count(start, since, &filter, &mut |_| {})
            .unwrap()
            .expect("PostgreSQL counts");
        counted.messages
    };
    assert_eq!(count(None), previous.0);
    assert_eq!(count(Some(ChannelKind::Telegram)), previous.1);

    let team = store.open_escalations().unwrap()[0].team.clone();
    let now = until + Duration::days(10);
    let base = ReportOptions::new(since, until, now);
    let channel = ReportOptions {
        channel: Some(ChannelKind::Telegram),
        ..base.clone()
    };
    let of_team = ReportOptions {
        team: Some(team),
        ..base.clone()
    };
    let teams = rulebook.teams();
    for options in [base, channel, of_team] {
        assert!(aggregated(&*store, &options, teams).is_some(), "the database aggregates");
        let counted = gather::report(&*store, &options, teams, &rulebook.default_team).unwrap();
        let g = gather::gather(&*store, &options).unwrap();
        let scanned = report::build(
            &options,
            teams,
            &rulebook.default_team,
            g.messages,
            &g.escalations,
            &g.replies,
        );
        assert!(counted.previous_messages > 10, "{counted:?}");
        assert!(
            counted.top_topics.iter().any(|t| t.previous > 0),
            "{counted:?}"
        );
        assert_eq!(counted, scanned, "{:?} {:?}", options.channel, options.team);
    }
}

/// The bot's response times in office hours, counted by the database from the opening hours
/// the report hands over: a reply that waits over a weekend and a holiday Monday counts only
/// Friday's last half hour and Tuesday's first; one on a Saturday counts nothing; one within
/// Tuesday's hours is cut to whole seconds as the clock does. The figures are checked by hand
/// and against the scanning report.
#[test]
fn office_time_over_a_weekend_and_a_holiday_is_counted_by_the_database_as_by_the_clock() {
    let store = new_store();
    let rulebook = rulebook();
    let intake = Intake::new(rulebook, &*store);
    let tz = chrono_tz::Europe::Amsterdam;
    let local = |d: u32, h: u32, m: u32| tz.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap().with_timezone(&Utc);
    let ms = Duration::milliseconds;
    // (received, sent): Friday 16:30 to Tuesday 09:30 after a holiday Monday; Saturday; and
    // Tuesday 10:00:00.7 to 10:20:00.2 (1,199.5 s).
    let replies = [
        (local(20, 16, 30), local(24, 9, 30)),
        (local(21, 12, 0), local(21, 13, 0)),
        (local(24, 10, 0) + ms(700), local(24, 10, 20) + ms(200)),
    ];
    for (i, (received, sent)) in replies.iter().enumerate() {
        let mut m = Inbound::from_text(format!("q{i}"), ChannelKind::Webchat, QUESTION, *received);
        m.conversation = format!("c{i}");
        let receipt = intake.accept(m, *received).unwrap();
        store.outbox_sent(receipt.outbox.unwrap(), *sent).unwrap();
    }
    // Every team of the rulebook on weekdays 9 to 5, Amsterdam time, Monday the 23rd off.
    let nine_to_five = vec![(NaiveTime::from_hms_opt(9, 0, 0).unwrap(), NaiveTime::from_hms_opt(17, 0, 0).unwrap())];
    let week = [0, 1, 2, 3, 4, 5, 6].map(|day| if day < 5 { nine_to_five.clone() } else { Vec::new() });
    let all: Vec<Team> = rulebook
        .teams()
        .all()
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.hours = Some(week.clone());
            t.holidays = [local(23, 12, 0).with_timezone(&tz).date_naive()].into();
            t
        })
        .collect();
    let teams = Teams::new(tz, all);

    let since = Utc.with_ymd_and_hms(2026, 11, 16, 0, 0, 0).unwrap();
    let options = ReportOptions::new(since, since + Duration::days(14), since + Duration::days(30));
    let counted = aggregated(&*store, &options, &teams).expect("the database aggregates");
    // Office: 0, 1,199 and 30 + 30 minutes; nearest rank: the 2nd and the 3rd of three.
    assert_eq!(counted.bot.office, (Some(1199), Some(3600)));
    assert_eq!(counted.bot.count, 3);
    let report = gather::report(&*store, &options, &teams, &rulebook.default_team).unwrap();
    assert_eq!(
        report.frt_bot.office,
        Percentiles { count: 3, median_secs: Some(1199), p90_secs: Some(3600) }
    );
    let g = gather::gather(&*store, &options).unwrap();
    let scanned = report::build(&options, &teams, &rulebook.default_team, g.messages, &g.escalations, &g.replies);
    assert_eq!(report, scanned);
}
