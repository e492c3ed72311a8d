//! `webcare report`: the KPIs of a period from the store, for the team (a weekly digest) and for
//! management (a quarterly report), as a table, CSV, JSON or one self-contained HTML page. The
//! figures are computed by `webcare_engine::report`; this file only chooses the period, reads
//! the store and writes the result.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use clap::Args;
use webcare_engine::report::{self, ReportOptions, html::Preset};
use webcare_engine::{ChannelKind, Rulebook, store};

use crate::config::StoreArgs;

#[derive(Args)]
pub struct ReportArgs {
    /// Start of the period: a local date (`2026-11-02`, from midnight) or time
    /// (`2026-11-02 08:00`), RFC 3339, or a span back from now (`7d`, `24h`). Default: from the
    /// preset, or 7 days back.
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// End of the period, exclusive: a local date (until that midnight), time, RFC 3339 or span
    /// back from now. Default: from the preset, or now.
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// Only this channel (telegram, discord, webchat, http, terminal).
    #[arg(long)]
    channel: Option<ChannelKind>,
    /// Only the messages escalated to this team.
    #[arg(long)]
    team: Option<String>,
    /// `table` (default), `csv`, `json`, or `html` (the default of a preset).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// `weekly`: the last complete week (Monday to Monday), the team's digest; `quarterly`: the
    /// last complete quarter, the management report. Both default to HTML.
    #[arg(long, value_enum)]
    preset: Option<PresetArg>,
    /// First-time resolution: the customer did not write again within this many days.
    #[arg(long, default_value_t = 7, value_name = "DAYS")]
    ftr_days: i64,
    /// Warn when the report is based on fewer messages than this.
    #[arg(long, default_value_t = report::DEFAULT_MIN_MESSAGES, value_name = "N")]
    min_messages: u64,
    /// Write the report to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// "Now" for SLA deadlines and the resolution window (tests, re-running an old report);
    /// local time or RFC 3339. Default: the clock.
    #[arg(long, value_name = "WHEN")]
    now: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Html,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PresetArg {
    Weekly,
    Quarterly,
}

/// A local date at midnight in the rulebook's time zone.
fn midnight(rulebook: &Rulebook, date: NaiveDate) -> anyhow::Result<DateTime<Utc>> {
    date.and_hms_opt(0, 0, 0)
        .and_then(|m| rulebook.teams().timezone.from_local_datetime(&m).earliest())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| anyhow!("{date} has no midnight in the rulebook's time zone"))
}

/// `7d`, `24h`, `90m` back from `now`; a local date or time; or RFC 3339.
fn parse_when(
    rulebook: &Rulebook,
    flag: &str,
    text: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<DateTime<Utc>> {
    let text = text.trim();
    if let Some(unit) = text.chars().last()
        && let Ok(amount) = text[..text.len() - unit.len_utf8()].parse::<i64>()
    {
        let span = match unit {
            'd' => Duration::days(amount),
            'h' => Duration::hours(amount),
            'm' => Duration::minutes(amount),
            _ => bail!("`--{flag} {text}`: use d, h or m after the number, like `7d`"),
        };
        return Ok(now - span);
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return midnight(rulebook, date);
    }
    super::parse_at(rulebook, Some(text)).map_err(|_| {
        anyhow!(
            "`--{flag} {text}` is not a date (`2026-11-02`), a time (`2026-11-02 08:00`) or a span (`7d`)"
        )
    })
}

/// The last complete week or quarter before `now`, in local dates.
fn preset_period(
    rulebook: &Rulebook,
    preset: PresetArg,
    now: DateTime<Utc>,
) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
    let today = now.with_timezone(&rulebook.teams().timezone).date_naive();
    let (from, to) = match preset {
        PresetArg::Weekly => {
            let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
            (monday - Duration::days(7), monday)
        }
        PresetArg::Quarterly => {
            let first_month = (today.month0() / 3) * 3 + 1;
            let this_quarter = NaiveDate::from_ymd_opt(today.year(), first_month, 1)
                .ok_or_else(|| anyhow!("no quarter for {today}"))?;
            let previous = if first_month == 1 {
                NaiveDate::from_ymd_opt(today.year() - 1, 10, 1)
            } else {
                NaiveDate::from_ymd_opt(today.year(), first_month - 3, 1)
            }
            .ok_or_else(|| anyhow!("no previous quarter for {today}"))?;
            (previous, this_quarter)
        }
    };
    Ok((midnight(rulebook, from)?, midnight(rulebook, to)?))
}

pub fn run(
    rules: Option<&std::path::Path>,
    store_args: &StoreArgs,
    args: ReportArgs,
) -> anyhow::Result<ExitCode> {
    let rulebook = super::load_rulebook(rules)?;
    let now = match &args.now {
        Some(text) => parse_when(&rulebook, "now", text, Utc::now())?,
        None => Utc::now(),
    };
    let (mut since, mut until) = match args.preset {
        Some(preset) => preset_period(&rulebook, preset, now)?,
        None => (now - Duration::days(7), now),
    };
    if let Some(text) = &args.since {
        since = parse_when(&rulebook, "since", text, now)?;
    }
    if let Some(text) = &args.until {
        until = parse_when(&rulebook, "until", text, now)?;
    }
    if until <= since {
        bail!("the period is empty: `--until` must be later than `--since`");
    }

    let config = store_args.resolve()?;
    let store_options = &config.options;
    if !store_options
        .backend
        .path_in(&store_options.data_dir)
        .exists()
    {
        bail!(
            "there is no {} store in `{}`; pass `--data DIR` of an existing store",
            store_options.backend,
            store_options.data_dir.display()
        );
    }
    let store = store::open(store_options)?;

    let mut options = ReportOptions::new(since, until, now);
    options.channel = args.channel;
    options.team = args.team.clone();
    options.ftr_days = args.ftr_days;
    options.min_messages = args.min_messages;
    if let Some(team) = &options.team
        && rulebook.teams().get(team).is_none()
    {
        bail!("the rulebook has no team `{team}`");
    }
    let report =
        report::gather::report(&*store, &options, rulebook.teams(), &rulebook.default_team)
            .context("reading the store")?;

    let format = args.format.unwrap_or(if args.preset.is_some() {
        Format::Html
    } else {
        Format::Table
    });
    let text = match format {
        Format::Table => report::render::table(&report),
        Format::Csv => report::render::csv(&report),
        Format::Json => {
            let mut json = serde_json::to_string_pretty(&report).context("report as JSON")?;
            json.push('\n');
            json
        }
        Format::Html => report::html::page(
            &report,
            match args.preset {
                Some(PresetArg::Weekly) => Preset::Weekly,
                Some(PresetArg::Quarterly) => Preset::Quarterly,
                None => Preset::Full,
            },
        ),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            eprintln!(
                "report of {} messages written to {}",
                report.messages,
                path.display()
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .context("cannot write the report")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
