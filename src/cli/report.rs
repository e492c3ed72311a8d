//! `webcare report`: the KPIs of a period from the store, for the team (a weekly digest) and for
//! management (a quarterly report), as a table, CSV, JSON or one self-contained HTML page. The
//! figures are computed by `webcare_engine::report`; this file only chooses the period, reads
//! the store and writes the result.
//!
//! While `webcare run` holds the store (one process at a time may open it), the report is
//! made by the running service instead: the command resolves the period itself and posts it
//! to the admin API (`POST /api/v1/report`), which makes it from its own store with the same
//! code (`crate::admin_api`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use clap::Args;
use webcare_engine::store::StoreError;
use webcare_engine::{ChannelKind, Rulebook, report, store};

use super::admin::{Admin, AdminArgs};
use crate::admin_api::{self, Format, PresetArg, ReportAnswer, ReportRequest};
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
    /// Only this channel (telegram, discord, webchat, http, terminal, whatsapp, messenger, instagram, email).
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
    /// Where to ask for the report while `webcare run` holds the store.
    #[command(flatten)]
    service: AdminArgs,
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

/// The request `args` make, with the period resolved in the rulebook's time zone.
fn request(rulebook: &Rulebook, args: &ReportArgs) -> anyhow::Result<ReportRequest> {
    let now = match &args.now {
        Some(text) => parse_when(rulebook, "now", text, Utc::now())?,
        None => Utc::now(),
    };
    let (mut since, mut until) = match args.preset {
        Some(preset) => preset_period(rulebook, preset, now)?,
        None => (now - Duration::days(7), now),
    };
    if let Some(text) = &args.since {
        since = parse_when(rulebook, "since", text, now)?;
    }
    if let Some(text) = &args.until {
        until = parse_when(rulebook, "until", text, now)?;
    }
    if until <= since {
        bail!("the period is empty: `--until` must be later than `--since`");
    }
    Ok(ReportRequest {
        since,
        until,
        now,
        channel: args.channel,
        team: args.team.clone(),
        ftr_days: args.ftr_days,
        min_messages: args.min_messages,
        format: args.format.unwrap_or(if args.preset.is_some() {
            Format::Html
        } else {
            Format::Table
        }),
        preset: args.preset,
    })
}

pub fn run(
    rules: Option<&std::path::Path>,
    store_args: &StoreArgs,
    args: ReportArgs,
) -> anyhow::Result<ExitCode> {
    let rulebook = super::load_rulebook(rules)?;
    let request = request(&rulebook, &args)?;
    let config = store_args.resolve()?;
    let store_options = &config.options;
    if store_options.backend.is_embedded()
        && !store_options
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
    let ReportAnswer { text, messages } = match store::open(store_options) {
        Ok(store) => request.make(&*store, &rulebook)?,
        Err(StoreError::Locked { .. }) => from_service(store_args, &args.service, &request)?,
        Err(e) => return Err(e.into()),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            eprintln!(
                "report of {messages} messages written to {}",
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

/// The report from the `webcare run` that holds the store, through its admin API.
fn from_service(
    store_args: &StoreArgs,
    service: &AdminArgs,
    request: &ReportRequest,
) -> anyhow::Result<ReportAnswer> {
    let admin = Admin::connect(store_args, service).context(
        "the store is in use by `webcare run`, which makes the report instead when asked with its admin token",
    )?;
    eprintln!(
        "the store is in use by `webcare run`; asking it at {} for the report",
        admin.url()
    );
    let answer = admin.call(
        true,
        admin_api::REPORT,
        Some(serde_json::to_value(request).context("the report request")?),
    )?;
    match serde_json::from_value::<ReportAnswer>(answer.body.clone()) {
        Ok(report) if answer.status.is_success() => Ok(report),
        _ => Err(anyhow!(
            "the service at {} could not make the report: {}",
            admin.url(),
            answer.body["error"].as_str().unwrap_or("no reason given")
        )),
    }
}
