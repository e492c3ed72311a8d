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

/// Open from, until.
type Span = (DateTime<Utc>, DateTime<Utc>);

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

    /// Seconds of the team's office time between `from` and `to`: [`office_seconds`].
    pub(super) fn seconds(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let Some(hours) = &self.team.hours else {
            return (to - from).num_seconds();
        };
        let (team, tz) = (self.team, self.tz);
        let first = from.with_timezone(&tz).date_naive();
        let last = to.with_timezone(&tz).date_naive();
        let mut total = 0;
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
            for (start, end) in spans.iter() {
                let start = (*start).max(from);
                let end = (*end).min(to);
                if end > start {
                    total += (end - start).num_seconds();
                }
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        total
    }
}
