//! A report's period aggregated by PostgreSQL ([`PgStore::report_period`]): counts with
//! `GROUPING SETS`, the bot's response times with `percentile_disc` (nearest rank, as the
//! report's percentiles) and office time as the overlap of each reply's wait with the bot
//! team's opening hours, which the report works out from the calendar and hands over as
//! sorted spans (`width_bucket` finds the first a wait touches). Only what the report lists or
//! follows one by one comes back as rows. The scanning report computes the same figures from
//! every message; `engine/tests/postgres.rs` holds the two to being equal.

use r2d2_postgres::postgres::types::ToSql;

use super::report::{own_replies, snapshot};
use super::{PgErr, PgStore, rows};
use crate::store::period::{BotTimes, PeriodCounted, PeriodQuery, Unreplied};
use crate::store::ReportItem;

/// The report's messages of the period, `m`: received in `[$1, $2)`, not the early warning's
/// alerts (`$3`), of the report's channel (`$4`) and team (`$5`) when it has one.
const PERIOD: &str = "m.received_at >= $1 AND m.received_at < $2 AND m.author <> $3
     AND ($4::text IS NULL OR m.channel = $4) AND ($5::text IS NULL OR m.team = $5)";

/// The message's reply `o` is the bot's, not given up (`$6`: the agents' reply ids, a hashed
/// set rather than an array searched for every message).
const BOT_REPLY: &str = "m.reply IS NOT NULL AND o.id IS NOT NULL AND NOT o.own_details
     AND o.status <> 'dead' AND m.seq NOT IN (SELECT unnest($6::int8[]))";

/// When a reply went out, or was queued while not confirmed sent.
const REPLIED_AT: &str = "CASE WHEN o.status = 'sent' THEN o.sent_at ELSE m.stored_at END";

impl PgStore {
    pub(super) fn report_period(
        &self,
        q: &PeriodQuery<'_>,
        visit: &mut dyn FnMut(ReportItem<'_>),
    ) -> Result<Option<PeriodCounted>, PgErr> {
        let mut conn = self.conn()?;
        let mut tx = snapshot(&mut conn)?;
        let first: Option<i64> = tx
            .query_one(
                "SELECT min(seq) FROM messages WHERE received_at >= $1 AND received_at < $2",
                &[&q.since, &q.read_until],
            )?
            .try_get(0)?;
        let Some(first) = first else {
            return Ok(Some(PeriodCounted::default()));
        };
        // A bot reply with details of its own (its message was changed since) is matched to
        // its message by id, which only the scan does.
        let detached: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE own_details AND id >= $1
                   AND status <> 'dead' AND NOT (id = ANY($2)))",
                &[&first, &q.agent_replies],
            )?
            .try_get(0)?;
        if detached {
            return Ok(None);
        }
        let channel = q.filter.channel.map(|c| c.as_str());
        let period: [&(dyn ToSql + Sync); 5] = [
            &q.since,
            &q.until,
            &q.filter.except_author,
            &channel,
            &q.filter.team,
        ];
        let Some(bot) = bot_times(&mut tx, q, &period, first)? else {
            return Ok(None);
        };
        if own_replies(&mut tx, q.since, q.read_until, visit)?.is_none() {
            return Ok(Some(PeriodCounted::default()));
        }
        let mut counted = PeriodCounted {
            bot,
            ..PeriodCounted::default()
        };
        counts(&mut tx, q, &period, &mut counted)?;
        rows_of(&mut tx, q, &period, first, &mut counted)?;
        tx.commit()?;
        Ok(Some(counted))
    }
}

/// Everything counted per message: one scan with a grouping set per figure.
fn counts(
    tx: &mut r2d2_postgres::postgres::Transaction<'_>,
    q: &PeriodQuery<'_>,
    period: &[&(dyn ToSql + Sync); 5],
    counted: &mut PeriodCounted,
) -> Result<(), PgErr> {
    let mut params: Vec<&(dyn ToSql + Sync)> = period.to_vec();
    params.push(&q.buckets);
    let sql = format!(
        "SELECT channel, category, team, sentiment, bucket, rulebook, action, mode,
                count(*), min(received_at), max(received_at),
                count(*) FILTER (WHERE sentiment = 'negative'),
                count(*) FILTER (WHERE sentiment = 'positive'),
                GROUPING(channel, category, team, sentiment, bucket, rulebook, action, mode)
         FROM (SELECT m.channel, m.category, coalesce(m.team, '(bot)') AS team, m.sentiment,
                      width_bucket(m.received_at, $6::timestamptz[]) AS bucket, m.rulebook,
                      m.action, m.mode, m.received_at
               FROM messages m WHERE {PERIOD}) m
         GROUP BY GROUPING SETS ((channel), (category), (team), (sentiment), (bucket),
                                (rulebook), (action, mode), ())"
    );
    // GROUPING sets a bit for each column not grouped by, the first column highest.
    let only = |column: u32| 255 - (1 << (7 - column));
    for r in tx.query(&sql, &params)? {
        let n = r.try_get::<_, i64>(8)? as u64;
        match r.try_get::<_, i32>(13)? {
            255 => counted.messages = n,
            g if g == only(0) => counted
                .by_channel
                .push((rows::parse(r.try_get(0)?)?, n)),
            g if g == only(1) => counted
                .by_category
                .push((rows::parse(r.try_get(1)?)?, n)),
            g if g == only(2) => counted.by_team.push((r.try_get(2)?, n)),
            g if g == only(3) => counted
                .sentiment
                .push((super::report::sentiment(r.try_get(3)?)?, n)),
            g if g == only(4) => {
                let bucket = r.try_get::<_, i32>(4)?;
                let index = usize::try_from(bucket - 1)
                    .map_err(|_| super::corrupt(format!("a message before its bucket {bucket}")))?;
                counted.buckets.push((
                    index,
                    n,
                    r.try_get::<_, i64>(11)? as u64,
                    r.try_get::<_, i64>(12)? as u64,
                ));
            }
            g if g == only(5) => {
                counted
                    .versions
                    .push((r.try_get(5)?, n, r.try_get(9)?, r.try_get(10)?))
            }
            // Grouped by action and mode.
            252 => counted.decided.push((
                super::report::action(r.try_get(6)?)?,
                rows::parse(r.try_get(7)?)?,
                n,
            )),
            g => return Err(super::corrupt(format!("unexpected grouping {g}"))),
        }
    }
    for r in tx.query(
        &format!("SELECT t, count(*) FROM messages m, unnest(m.topics) AS t WHERE {PERIOD} GROUP BY t"),
        period,
    )? {
        counted
            .by_topic
            .push((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64));
    }
    Ok(())
}

/// The bot's response times and the first-time resolution of its answers; `None` when a reply
/// went out after the office hours handed over end.
fn bot_times(
    tx: &mut r2d2_postgres::postgres::Transaction<'_>,
    q: &PeriodQuery<'_>,
    period: &[&(dyn ToSql + Sync); 5],
    first: i64,
) -> Result<Option<BotTimes>, PgErr> {
    let hours = q.office.is_some();
    let spans = q.office.as_deref().unwrap_or_default();
    let starts: Vec<_> = spans.iter().map(|s| s.0).collect();
    let ends: Vec<_> = spans.iter().map(|s| s.1).collect();
    let mut params: Vec<&(dyn ToSql + Sync)> = period.to_vec();
    params.extend([
        &q.agent_replies as &(dyn ToSql + Sync),
        &first,
        &hours,
        &starts,
        &ends,
        &q.now,
        &q.ftr_secs,
        &q.read_until,
        &q.office_until,
    ]);
    // Office seconds: each span's overlap with the wait, cut to whole seconds per span as
    // `OfficeClock` does. The spans are sorted and disjoint, so those before the one the wait
    // starts in (`width_bucket`: the last that opened by then) end before it.
    let sql = format!(
        "WITH b AS (
            SELECT m.channel, m.conversation, m.action, m.received_at, {REPLIED_AT} AS at
            FROM messages m JOIN outbox o ON o.id = m.seq AND o.id >= $7
            WHERE {PERIOD} AND {BOT_REPLY}
         ), t AS (
            SELECT b.*, greatest(0, trunc(extract(epoch FROM b.at - b.received_at)))::bigint AS calendar,
                   CASE WHEN $8 THEN (
                       SELECT coalesce(sum(trunc(extract(epoch FROM least(($10::timestamptz[])[k], b.at) - greatest(($9::timestamptz[])[k], b.received_at)))), 0)
                       FROM generate_series(greatest(1, width_bucket(b.received_at, $9::timestamptz[])),
                                            width_bucket(b.at, $9::timestamptz[])) AS k
                       WHERE least(($10::timestamptz[])[k], b.at) > greatest(($9::timestamptz[])[k], b.received_at)
                   )::bigint END AS office,
                   b.at + make_interval(secs => $12) AS window_end
            FROM b
         )
         SELECT count(*),
            percentile_disc(0.5) WITHIN GROUP (ORDER BY calendar),
            percentile_disc(0.9) WITHIN GROUP (ORDER BY calendar),
            percentile_disc(0.5) WITHIN GROUP (ORDER BY coalesce(office, calendar)),
            percentile_disc(0.9) WITHIN GROUP (ORDER BY coalesce(office, calendar)),
            count(*) FILTER (WHERE calendar < 60),
            count(*) FILTER (WHERE calendar >= 60 AND calendar < 900),
            count(*) FILTER (WHERE calendar >= 900 AND calendar < 3600),
            count(*) FILTER (WHERE calendar >= 3600 AND calendar < 14400),
            count(*) FILTER (WHERE calendar >= 14400 AND calendar < 28800),
            count(*) FILTER (WHERE calendar >= 28800 AND calendar < 86400),
            count(*) FILTER (WHERE calendar >= 86400),
            count(*) FILTER (WHERE action = 'answer' AND window_end <= $11),
            count(*) FILTER (WHERE action = 'answer' AND window_end <= $11 AND NOT EXISTS (
                SELECT 1 FROM messages w
                WHERE w.channel = t.channel AND w.conversation = t.conversation
                  AND w.received_at > t.at AND w.received_at <= t.window_end
                  AND w.received_at >= $1 AND w.received_at < $13 AND w.author <> $3)),
            count(*) FILTER (WHERE action = 'answer' AND window_end > $11),
            coalesce(bool_or($8 AND at > $14), false)
         FROM t"
    );
    let r = tx.query_one(&sql, &params)?;
    if r.try_get::<_, bool>(15)? {
        return Ok(None);
    }
    let n = |i: usize| r.try_get::<_, i64>(i).map(|n| n as u64);
    Ok(Some(BotTimes {
        count: n(0)?,
        calendar: (r.try_get(1)?, r.try_get(2)?),
        office: (r.try_get(3)?, r.try_get(4)?),
        bands: (5..12).map(n).collect::<Result<_, _>>()?,
        ftr: (n(12)?, n(13)?, n(14)?),
    }))
}

/// The few messages the report follows one by one: agents' replies, messages without an
/// automatic reply, escalations' first messages and, for resolved ones, what the customer
/// wrote after.
fn rows_of(
    tx: &mut r2d2_postgres::postgres::Transaction<'_>,
    q: &PeriodQuery<'_>,
    period: &[&(dyn ToSql + Sync); 5],
    first: i64,
    counted: &mut PeriodCounted,
) -> Result<(), PgErr> {
    for r in tx.query(
        &format!(
            "SELECT m.channel, m.conversation, {REPLIED_AT}
             FROM messages m JOIN outbox o ON o.id = m.seq
             WHERE m.seq = ANY($3) AND m.received_at >= $1 AND m.received_at < $2
               AND m.reply IS NOT NULL AND NOT o.own_details AND o.status <> 'dead'"
        ),
        &[&q.since, &q.read_until, &q.agent_replies],
    )? {
        let at = r.try_get::<_, Option<_>>(2)?;
        if let Some(at) = at {
            counted
                .human_replies
                .push((rows::parse(r.try_get(0)?)?, r.try_get(1)?, at));
        }
    }

    let mut params: Vec<&(dyn ToSql + Sync)> = period.to_vec();
    params.extend([&q.agent_replies as &(dyn ToSql + Sync), &first]);
    for r in tx.query(
        &format!(
            "SELECT m.channel, m.id, m.conversation, m.received_at, m.action, m.mode, m.team
             FROM messages m LEFT JOIN outbox o ON o.id = m.seq AND o.id >= $7
             WHERE {PERIOD} AND m.action <> 'log' AND NOT coalesce({BOT_REPLY}, false)
             ORDER BY m.seq"
        ),
        &params,
    )? {
        counted.unreplied.push(Unreplied {
            channel: rows::parse(r.try_get(0)?)?,
            id: r.try_get(1)?,
            conversation: r.try_get(2)?,
            received_at: r.try_get(3)?,
            action: super::report::action(r.try_get(4)?)?,
            mode: rows::parse(r.try_get(5)?)?,
            team: r.try_get(6)?,
        });
    }

    let channels: Vec<&str> = q.escalations.iter().map(|e| e.0).collect();
    let ids: Vec<&str> = q.escalations.iter().map(|e| e.1).collect();
    let wants: Vec<bool> = q.escalations.iter().map(|e| e.2).collect();
    let mut params: Vec<&(dyn ToSql + Sync)> = period.to_vec();
    params.extend([&channels as &(dyn ToSql + Sync), &ids, &wants]);
    let mut followed: Vec<(String, String)> = Vec::new();
    for r in tx.query(
        &format!(
            "SELECT m.channel, m.id, m.conversation, m.received_at, e.wants
             FROM unnest($6::text[], $7::text[], $8::bool[]) AS e(channel, id, wants)
             JOIN messages m ON m.channel = e.channel AND m.id = e.id
             WHERE {PERIOD}"
        ),
        &params,
    )? {
        let (channel, conversation): (String, String) = (r.try_get(0)?, r.try_get(2)?);
        if r.try_get::<_, bool>(4)? {
            followed.push((channel.clone(), conversation.clone()));
        }
        counted.first_messages.push((
            rows::parse(&channel)?,
            r.try_get(1)?,
            conversation,
            r.try_get(3)?,
        ));
    }
    followed.sort_unstable();
    followed.dedup();
    let channels: Vec<&str> = followed.iter().map(|f| f.0.as_str()).collect();
    let conversations: Vec<&str> = followed.iter().map(|f| f.1.as_str()).collect();
    let channel = q.filter.channel.map(|c| c.as_str());
    for r in tx.query(
        "SELECT m.channel, m.conversation, m.received_at
         FROM unnest($5::text[], $6::text[]) AS c(channel, conversation)
         JOIN messages m ON m.channel = c.channel AND m.conversation = c.conversation
         WHERE m.received_at >= $1 AND m.received_at < $2 AND m.author <> $3
           AND ($4::text IS NULL OR m.channel = $4)",
        &[
            &q.since,
            &q.read_until,
            &q.filter.except_author,
            &channel,
            &channels,
            &conversations,
        ],
    )? {
        counted
            .written
            .push((rows::parse(r.try_get(0)?)?, r.try_get(1)?, r.try_get(2)?));
    }
    Ok(())
}
