//! teams.toml compiled: each team's hours, holidays, SLA clock and escalation chain, checked
//! against each other and against the rulebook's `default_team`.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use toml::Spanned;

use super::config::TeamsFile;
use super::{Checker, RulebookError, RulebookSource, strings};
use crate::teams::{SlaClock, Team, WeekHours, parse_ranges};

/// teams.toml: the teams with their hours, holidays, SLAs and escalation chains, and the ids
/// topics, replies and `default_team` may name. Every mistake goes into `errors`.
pub(super) fn compile(
    source: &RulebookSource,
    teams_file: &TeamsFile,
    default_team: &Spanned<String>,
    errors: &mut Vec<RulebookError>,
) -> (Vec<Team>, BTreeSet<String>) {
    let mut check = Checker {
        file: &source.teams,
        errors,
    };
    let mut teams = Vec::new();
    let mut team_ids = BTreeSet::new();
    for team in &teams_file.team {
        if !team_ids.insert(team.id.get_ref().clone()) {
            check.at(
                &team.id,
                format!("team `{}` is defined twice", team.id.get_ref()),
            );
        }
        let hours: Option<WeekHours> = if team.hours.always {
            None
        } else {
            let h = &team.hours;
            let days = [&h.mon, &h.tue, &h.wed, &h.thu, &h.fri, &h.sat, &h.sun];
            Some(days.map(|day| match day {
                None => Vec::new(),
                Some(text) => parse_ranges(text.get_ref()).unwrap_or_else(|e| {
                    check.at(text, e);
                    Vec::new()
                }),
            }))
        };
        let mut holidays = BTreeSet::new();
        for day in &team.holidays {
            match NaiveDate::parse_from_str(day.get_ref(), "%Y-%m-%d") {
                Ok(date) => {
                    holidays.insert(date);
                }
                Err(_) => check.at(
                    day,
                    format!("`{}` is not a date like `2026-12-25`", day.get_ref()),
                ),
            }
        }
        teams.push(Team {
            id: team.id.get_ref().clone(),
            name: team.name.clone(),
            name_en: team.name_en.clone().unwrap_or_else(|| team.name.clone()),
            hours,
            holidays,
            sla: [
                team.sla.low,
                team.sla.normal,
                team.sla.high,
                team.sla.urgent,
            ],
            sla_clock: match team.sla_clock.as_ref().map(|c| c.get_ref().as_str()) {
                None | Some("office") => SlaClock::Office,
                Some("calendar") => SlaClock::Calendar,
                Some(other) => {
                    if let Some(clock) = &team.sla_clock {
                        check.at(
                            clock,
                            format!("sla_clock `{other}` is not `office` or `calendar`"),
                        );
                    }
                    SlaClock::Office
                }
            },
            chain: strings(&team.chain),
            members: team.members.clone(),
        });
    }
    for team in &teams_file.team {
        for step in &team.chain {
            if !team_ids.contains(step.get_ref()) {
                check.at(
                    step,
                    format!(
                        "chain names team `{}`, which is not defined here",
                        step.get_ref()
                    ),
                );
            } else if step.get_ref() == team.id.get_ref() {
                check.at(
                    step,
                    "a team's chain cannot hand an escalation to the team itself",
                );
            }
        }
    }
    if !team_ids.contains(default_team.get_ref()) {
        Checker {
            file: &source.rulebook,
            errors,
        }
        .at(
            default_team,
            format!(
                "default team `{}` is not defined in {}",
                default_team.get_ref(),
                source.teams.path.display()
            ),
        );
    }

    (teams, team_ids)
}
