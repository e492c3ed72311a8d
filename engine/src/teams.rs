//! Teams and their office hours. A holding reply must tell the truth ("we answer on Monday from
//! 09:00"), so the hours, holidays and time zone live in the rulebook and every "when" is
//! computed from them, against the message's own time: tests and replays use a virtual clock by
//! construction.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use rustc_hash::FxHashMap;

use crate::decision::{Language, Priority};

/// Opening ranges per weekday, Monday first.
pub type WeekHours = [Vec<(NaiveTime, NaiveTime)>; 7];

#[derive(Debug, Clone)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub name_en: String,
    /// `None`: reachable around the clock.
    pub hours: Option<WeekHours>,
    pub holidays: BTreeSet<NaiveDate>,
    /// Minutes to the first human response, indexed by [`Priority`] (low, normal, high, urgent).
    pub sla: [u32; 4],
    pub sla_clock: SlaClock,
    /// Teams that take over, in order, at each SLA breach.
    pub chain: Vec<String>,
    pub members: Vec<String>,
}

/// How SLA minutes are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaClock {
    /// Only the team's office hours count: 30 minutes at 16:55 on Friday end on Monday 09:25.
    Office,
    /// Every minute counts.
    Calendar,
}

/// Parses `"09:00-12:30, 13:30-17:00"`.
pub fn parse_ranges(text: &str) -> Result<Vec<(NaiveTime, NaiveTime)>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("closed") || text.is_empty() {
        return Ok(Vec::new());
    }
    let mut ranges = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (from, to) = part
            .split_once('-')
            .ok_or_else(|| format!("`{part}` is not a time range like `09:00-17:00`"))?;
        let parse = |t: &str| {
            NaiveTime::parse_from_str(t.trim(), "%H:%M")
                .map_err(|_| format!("`{}` is not a time like `09:00`", t.trim()))
        };
        let (from, to) = (parse(from)?, parse(to)?);
        if from >= to {
            return Err(format!("`{part}` ends before it starts"));
        }
        ranges.push((from, to));
    }
    ranges.sort();
    Ok(ranges)
}

impl Team {
    pub fn name_in(&self, language: Language) -> &str {
        match language {
            Language::Nl => &self.name,
            Language::En => &self.name_en,
        }
    }

    pub fn is_open(&self, at: DateTime<Tz>) -> bool {
        let Some(hours) = &self.hours else {
            return true;
        };
        if self.holidays.contains(&at.date_naive()) {
            return false;
        }
        let time = at.time();
        hours[at.weekday().num_days_from_monday() as usize]
            .iter()
            .any(|(from, to)| *from <= time && time < *to)
    }

    /// Whether the team does not open at all on the day of `at` (no hours that weekday, or a
    /// holiday): "closed today", not merely "closed right now".
    pub fn closed_all_day(&self, at: DateTime<Tz>) -> bool {
        let Some(hours) = &self.hours else {
            return false;
        };
        self.holidays.contains(&at.date_naive())
            || hours[at.weekday().num_days_from_monday() as usize].is_empty()
    }

    /// The next moment the team is open, `at` itself when open now; `None` when the team has
    /// no hours in the coming year.
    pub fn next_open(&self, at: DateTime<Tz>) -> Option<DateTime<Tz>> {
        if self.is_open(at) {
            return Some(at);
        }
        let hours = self.hours.as_ref()?;
        let tz = at.timezone();
        let today = at.date_naive();
        for offset in 0..=366 {
            let date = today + Duration::days(offset);
            if self.holidays.contains(&date) {
                continue;
            }
            for (from, _) in &hours[date.weekday().num_days_from_monday() as usize] {
                let Some(start) = tz.from_local_datetime(&date.and_time(*from)).earliest() else {
                    continue;
                };
                if start > at {
                    return Some(start);
                }
            }
        }
        None
    }
}

impl Team {
    pub fn sla_minutes(&self, priority: Priority) -> u32 {
        self.sla[priority as usize]
    }

    /// When the first human response to an escalation of `priority` arriving at `at` is due.
    pub fn sla_deadline(&self, at: DateTime<Tz>, priority: Priority) -> Option<DateTime<Tz>> {
        let minutes = self.sla_minutes(priority);
        match self.sla_clock {
            SlaClock::Office => self.deadline(at, minutes),
            SlaClock::Calendar => Some(at + Duration::minutes(i64::from(minutes))),
        }
    }

    /// The moment `minutes` of this team's office time have passed after `at`: the honest
    /// "answered before" time of a holding reply and the SLA deadline. Holidays and closed days
    /// are skipped; a team without hours counts calendar time.
    pub fn deadline(&self, at: DateTime<Tz>, minutes: u32) -> Option<DateTime<Tz>> {
        let Some(hours) = &self.hours else {
            return Some(at + Duration::minutes(i64::from(minutes)));
        };
        let tz = at.timezone();
        let mut left = i64::from(minutes);
        for offset in 0..=366 {
            let date = at.date_naive() + Duration::days(offset);
            if self.holidays.contains(&date) {
                continue;
            }
            for (from, to) in &hours[date.weekday().num_days_from_monday() as usize] {
                let (Some(start), Some(end)) = (
                    tz.from_local_datetime(&date.and_time(*from)).earliest(),
                    tz.from_local_datetime(&date.and_time(*to)).earliest(),
                ) else {
                    continue;
                };
                let start = start.max(at);
                if end <= start {
                    continue;
                }
                let available = (end - start).num_minutes();
                if left <= available {
                    return Some(start + Duration::minutes(left));
                }
                left -= available;
            }
        }
        None
    }
}

/// All teams of a rulebook, with the time zone their hours are in.
#[derive(Debug)]
pub struct Teams {
    pub timezone: Tz,
    teams: Vec<Team>,
    by_id: FxHashMap<String, usize>,
}

impl Teams {
    pub fn new(timezone: Tz, teams: Vec<Team>) -> Self {
        let by_id = teams
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        Teams {
            timezone,
            teams,
            by_id,
        }
    }

    pub fn get(&self, id: &str) -> Option<&Team> {
        self.by_id.get(id).map(|&i| &self.teams[i])
    }

    pub fn all(&self) -> &[Team] {
        &self.teams
    }

    pub fn local(&self, at: DateTime<Utc>) -> DateTime<Tz> {
        at.with_timezone(&self.timezone)
    }
}

const WEEKDAYS_NL: [&str; 7] = [
    "maandag",
    "dinsdag",
    "woensdag",
    "donderdag",
    "vrijdag",
    "zaterdag",
    "zondag",
];
const MONTHS_NL: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];

/// "maandag vanaf 09:00" / "on Monday from 09:00", relative to `now`, for holding replies;
/// "nu" / "now" when `next` is `now` (the team is open).
pub fn describe_next_open(now: DateTime<Tz>, next: DateTime<Tz>, language: Language) -> String {
    if next <= now {
        return match language {
            Language::Nl => "nu".to_owned(),
            Language::En => "now".to_owned(),
        };
    }
    describe_moment(now, next, language, ("vanaf", "from"))
}

/// "vandaag vóór 14:15" / "today before 14:15", "maandag vóór 10:30" / "on Monday before 10:30".
pub fn describe_deadline(now: DateTime<Tz>, deadline: DateTime<Tz>, language: Language) -> String {
    describe_moment(now, deadline, language, ("vóór", "before"))
}

/// A moment relative to `now` in words, with `(nl, en)` before the time.
fn describe_moment(
    now: DateTime<Tz>,
    moment: DateTime<Tz>,
    language: Language,
    (nl, en): (&str, &str),
) -> String {
    let days = (moment.date_naive() - now.date_naive()).num_days();
    // What `format("%H:%M")` prints, without parsing the format on every holding reply, and
    // joined without `format!`, whose machinery cost more than the words (every escalation's
    // holding reply has one or two such moments).
    let ([h0, h1], [m0, m1]) = (two_digits(moment.hour()), two_digits(moment.minute()));
    let time = [h0, h1, b':', m0, m1];
    let time = String::from_utf8_lossy(&time);
    let time = time.as_ref();
    let weekday = moment.weekday();
    match (language, days) {
        (Language::Nl, 0) => ["vandaag ", nl, " ", time].concat(),
        (Language::Nl, 1) => ["morgen ", nl, " ", time].concat(),
        (Language::Nl, 2..=6) => [weekday_nl(weekday), " ", nl, " ", time].concat(),
        (Language::Nl, _) => format!(
            "{} {} {} {nl} {time}",
            weekday_nl(weekday),
            moment.day(),
            MONTHS_NL[moment.month0() as usize]
        ),
        (Language::En, 0) => ["today ", en, " ", time].concat(),
        (Language::En, 1) => ["tomorrow ", en, " ", time].concat(),
        (Language::En, 2..=6) => format!("on {} {en} {time}", moment.format("%A")),
        (Language::En, _) => format!("on {} {en} {time}", moment.format("%A %-d %B")),
    }
}

fn weekday_nl(day: Weekday) -> &'static str {
    WEEKDAYS_NL[day.num_days_from_monday() as usize]
}

/// "4 uur" / "4 hours", "30 minuten" / "30 minutes".
pub fn describe_duration(minutes: u32, language: Language) -> String {
    let (hours, rest) = (minutes / 60, minutes % 60);
    // Pushed piece by piece rather than with `format!` (see `describe_moment`).
    let mut out = String::with_capacity(24);
    let mut number = |n: u32, unit: &str| {
        push_number(&mut out, n);
        out.push_str(unit);
    };
    match (language, hours, rest) {
        (Language::Nl, 0, m) => number(m, " minuten"),
        (Language::Nl, h, 0) => number(h, " uur"),
        (Language::Nl, h, m) => {
            number(h, " uur en ");
            number(m, " minuten");
        }
        (Language::En, 0, m) => number(m, " minutes"),
        (Language::En, 1, 0) => number(1, " hour"),
        (Language::En, h, 0) => number(h, " hours"),
        (Language::En, 1, m) => {
            number(1, " hour and ");
            number(m, " minutes");
        }
        (Language::En, h, m) => {
            number(h, " hours and ");
            number(m, " minutes");
        }
    }
    out
}

/// `n` in decimal, as `{n}` prints it.
fn push_number(out: &mut String, n: u32) {
    if n >= 10 {
        push_number(out, n / 10);
    }
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// The two digits of `n` (below 100), as `{n:02}` prints them.
fn two_digits(n: u32) -> [u8; 2] {
    [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Amsterdam;

    fn office() -> Team {
        let day = parse_ranges("09:00-12:30, 13:00-17:00").unwrap_or_default();
        Team {
            id: "webcare".into(),
            name: "Webcare".into(),
            name_en: "Webcare".into(),
            hours: Some([
                day.clone(),
                day.clone(),
                day.clone(),
                day.clone(),
                day,
                vec![],
                vec![],
            ]),
            holidays: [NaiveDate::from_ymd_opt(2026, 12, 25)]
                .into_iter()
                .flatten()
                .collect(),
            sla: [480, 240, 120, 30],
            sla_clock: SlaClock::Office,
            chain: vec![],
            members: vec![],
        }
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Tz> {
        Amsterdam
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap_or_else(|| panic!("valid local time"))
    }

    #[test]
    fn open_inside_ranges_closed_at_lunch_weekends_and_holidays() {
        let team = office();
        assert!(team.is_open(at(2026, 11, 23, 10, 0))); // Monday
        assert!(!team.is_open(at(2026, 11, 23, 12, 45)));
        assert!(!team.is_open(at(2026, 11, 23, 17, 0)));
        assert!(!team.is_open(at(2026, 11, 28, 11, 0))); // Saturday
        assert!(!team.is_open(at(2026, 12, 25, 11, 0))); // Christmas, a Friday
    }

    #[test]
    fn friday_evening_next_opens_monday_morning_and_says_so() {
        let team = office();
        let friday = at(2026, 11, 27, 17, 55);
        let next = team.next_open(friday).unwrap_or(friday);
        assert_eq!(next, at(2026, 11, 30, 9, 0));
        assert_eq!(
            describe_next_open(friday, next, Language::Nl),
            "maandag vanaf 09:00"
        );
        assert_eq!(
            describe_next_open(friday, next, Language::En),
            "on Monday from 09:00"
        );
    }

    #[test]
    fn lunch_break_reopens_today_and_holidays_are_skipped() {
        let team = office();
        let lunch = at(2026, 11, 23, 12, 45);
        let next = team.next_open(lunch).unwrap_or(lunch);
        assert_eq!(
            describe_next_open(lunch, next, Language::En),
            "today from 13:00"
        );
        let christmas_eve = at(2026, 12, 24, 18, 0);
        let next = team.next_open(christmas_eve).unwrap_or(christmas_eve);
        assert_eq!(next, at(2026, 12, 28, 9, 0));
        assert_eq!(
            describe_next_open(christmas_eve, next, Language::Nl),
            "maandag vanaf 09:00"
        );
    }

    #[test]
    fn deadlines_count_office_minutes_only() {
        let team = office();
        // 16:45 on Friday with four office hours to go: 15 minutes today, 210 on Monday
        // morning, and the last 15 after the lunch break.
        let friday = at(2026, 11, 27, 16, 45);
        let due = team.deadline(friday, 240).unwrap_or(friday);
        assert_eq!(due, at(2026, 11, 30, 13, 15));
        assert_eq!(
            describe_deadline(friday, due, Language::Nl),
            "maandag vóór 13:15"
        );
        // The lunch break does not count either.
        let morning = at(2026, 11, 23, 11, 0);
        assert_eq!(team.deadline(morning, 120), Some(at(2026, 11, 23, 13, 30)));
        // The Friday 16:55 example of the SLA: 30 office minutes, due Monday 09:25.
        let late = at(2026, 11, 27, 16, 55);
        assert_eq!(team.deadline(late, 30), Some(at(2026, 11, 30, 9, 25)));
        assert_eq!(
            describe_next_open(morning, morning, Language::En),
            "now",
            "an open team is open now"
        );
    }

    #[test]
    fn sla_deadlines_follow_priority_and_clock() {
        let mut team = office();
        let friday = at(2026, 11, 27, 16, 55);
        assert_eq!(
            team.sla_deadline(friday, Priority::Urgent),
            Some(at(2026, 11, 30, 9, 25)),
            "30 office minutes from Friday 16:55"
        );
        team.sla_clock = SlaClock::Calendar;
        assert_eq!(
            team.sla_deadline(friday, Priority::Urgent),
            Some(at(2026, 11, 27, 17, 25))
        );
        assert_eq!(team.sla_minutes(Priority::Low), 480);
    }

    #[test]
    fn ranges_are_validated() {
        assert!(parse_ranges("17:00-09:00").is_err());
        assert!(parse_ranges("9-5").is_err());
        assert_eq!(parse_ranges("closed"), Ok(vec![]));
        assert_eq!(describe_duration(240, Language::Nl), "4 uur");
        assert_eq!(describe_duration(90, Language::En), "1 hour and 30 minutes");
    }

    /// The holding reply's durations and moments as `format!` wrote them before they were
    /// pushed piece by piece: the same text for every length of time and every minute.
    #[test]
    fn durations_and_moments_read_as_format_wrote_them() {
        fn formatted(minutes: u32, language: Language) -> String {
            match (language, minutes / 60, minutes % 60) {
                (Language::Nl, 0, m) => format!("{m} minuten"),
                (Language::Nl, h, 0) => format!("{h} uur"),
                (Language::Nl, h, m) => format!("{h} uur en {m} minuten"),
                (Language::En, 0, m) => format!("{m} minutes"),
                (Language::En, 1, 0) => "1 hour".to_owned(),
                (Language::En, h, 0) => format!("{h} hours"),
                (Language::En, 1, m) => format!("1 hour and {m} minutes"),
                (Language::En, h, m) => format!("{h} hours and {m} minutes"),
            }
        }
        for minutes in (0..3_000).chain([59_999, 600_000, u32::MAX]) {
            for language in [Language::Nl, Language::En] {
                assert_eq!(
                    describe_duration(minutes, language),
                    formatted(minutes, language)
                );
            }
        }
        let now = at(2026, 11, 23, 0, 0);
        for step in 0..(3 * 24 * 60 / 7) {
            let moment = now + Duration::minutes(7 * step);
            let time = format!("{:02}:{:02}", moment.hour(), moment.minute());
            let (nl, en) = match (moment.date_naive() - now.date_naive()).num_days() {
                0 => (
                    format!("vandaag vóór {time}"),
                    format!("today before {time}"),
                ),
                1 => (
                    format!("morgen vóór {time}"),
                    format!("tomorrow before {time}"),
                ),
                _ => (
                    format!("woensdag vóór {time}"),
                    format!("on Wednesday before {time}"),
                ),
            };
            assert_eq!(describe_deadline(now, moment, Language::Nl), nl);
            assert_eq!(describe_deadline(now, moment, Language::En), en);
        }
    }
}
