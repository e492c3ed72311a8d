//! Office time: how much of a span falls in a team's opening hours, the clock every response
//! and resolution time is also measured on. Apart from the figures because its calendar
//! arithmetic (time zones, holidays, closed days) is a subject of its own, tested on its own.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use rustc_hash::FxHashMap;

use crate::teams::Team;

/// Seconds of `team`'s office time between `from` and `to` (zero when `to` is not later). A team
/// without hours counts calendar time.
pub fn office_seconds(
    team: &Team,
    tz: chrono_tz::Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> i64 {
    OfficeClock::new(team, tz).seconds(from, to)
}

use crate::store::period::Span;

/// [`office_seconds`] for one team, with each day's opening hours converted to UTC once per
/// report instead of once per reply.
pub(super) struct OfficeClock<'t> {
    team: &'t Team,
    tz: chrono_tz::Tz,
    days: FxHashMap<NaiveDate, Vec<Span>>,
}

impl<'t> OfficeClock<'t> {
    pub(super) fn new(team: &'t Team, tz: chrono_tz::Tz) -> Self {
        OfficeClock {
            team,
            tz,
            days: FxHashMap::default(),
        }
    }

    /// Whether the team keeps opening hours (else its time is calendar time).
    pub(super) fn has_hours(&self) -> bool {
        self.team.hours.is_some()
    }

    /// Seconds of the team's office time between `from` and `to`: [`office_seconds`].
    pub(super) fn seconds(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        if self.team.hours.is_none() {
            return (to - from).num_seconds();
        }
        let mut total = 0;
        self.each_day(from, to, |spans| {
            for (start, end) in spans {
                let start = (*start).max(from);
                let end = (*end).min(to);
                if end > start {
                    total += (end - start).num_seconds();
                }
            }
        });
        total
    }

    /// The team's opening hours from the day of `from` to the day of `to`, sorted and disjoint,
    /// for a database to count office time in ([`seconds`](Self::seconds) is the same sum
    /// over these spans). `None` for a team without hours (calendar time), or whose hours
    /// overlap.
    pub(super) fn spans(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<Vec<Span>> {
        self.team.hours.as_ref()?;
        let mut all: Vec<Span> = Vec::new();
        // A span that closes before it opens counts nothing.
        self.each_day(from, to, |spans| {
            all.extend(spans.iter().filter(|(start, end)| end > start))
        });
        all.sort_unstable();
        all.windows(2).all(|w| w[0].1 <= w[1].0).then_some(all)
    }

    /// Calls `visit` with the opening hours in UTC of each day from the day of `from` to the day
    /// of `to` (local time), nothing on a holiday.
    fn each_day(&mut self, from: DateTime<Utc>, to: DateTime<Utc>, mut visit: impl FnMut(&[Span])) {
        let Some(hours) = &self.team.hours else {
            return;
        };
        let (team, tz) = (self.team, self.tz);
        let first = from.with_timezone(&tz).date_naive();
        let last = to.with_timezone(&tz).date_naive();
        let mut date = first;
        while date <= last {
            let spans = self.days.entry(date).or_insert_with(|| {
                if team.holidays.contains(&date) {
                    return Vec::new();
                }
                hours[date.weekday().num_days_from_monday() as usize]
                    .iter()
                    .filter_map(|(open, close)| {
                        let start = tz.from_local_datetime(&date.and_time(*open)).earliest()?;
                        let end = tz.from_local_datetime(&date.and_time(*close)).earliest()?;
                        Some((start.with_timezone(&Utc), end.with_timezone(&Utc)))
                    })
                    .collect()
            });
            visit(spans);
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
    }
}
