//! What a report reads from PostgreSQL. [`PgStore::report_scan`] hands every message of a
//! period over in brief with its reply's state, for the figures that need each message (response
//! times in office hours, unanswered messages, first-time resolution). A period the report only
//! counts (the previous one, for trends) is counted by the database instead,
//! [`PgStore::report_count`]: `count(*)` and `unnest(topics) … GROUP BY`, so half a million rows
//! never cross the connection to be added up by the client (see BENCHMARKS.md).

use chrono::{DateTime, Utc};
use r2d2_postgres::postgres;

use super::PgErr;
use super::{PgStore, rows};
use crate::store::{ActionKind, CountFilter, Counted, MessageBrief, ReportItem};

impl PgStore {
    pub(super) fn report_scan(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        with_replies: bool,
        visit: &mut dyn FnMut(ReportItem<'_>),
    ) -> Result<(), PgErr> {
        let mut conn = self.conn()?;
        let mut tx = snapshot(&mut conn)?;
        let Some(first) = own_replies(&mut tx, since, until, visit)? else {
            return Ok(());
        };
        let mut after = first - 1;
        // `o.id > $3` says again what `o.id = m.seq` already implies: without it the planner
        // merge-joined each page with the outbox index from its first entry (half a million
        // rows read per page of 4,096 on a store of a million; a 30-day report took 21-29 s,
        // see BENCHMARKS.md).
        loop {
            let page = tx.query(
                "SELECT m.seq, m.channel, m.id, m.conversation, m.author, m.received_at, m.stored_at, m.action, m.team,
                        m.category, m.topics, m.sentiment, m.rulebook, m.mode, m.reply IS NOT NULL,
                        o.status, o.sent_at, o.own_details
                 FROM messages m LEFT JOIN outbox o ON o.id = m.seq AND o.id > $3
                 WHERE m.received_at >= $1 AND m.received_at < $2 AND m.seq > $3
                 ORDER BY m.seq LIMIT 4096",
                &[&since, &until, &after],
            )?;
            for r in &page {
                let seq: i64 = r.try_get(0)?;
                after = seq;
                let channel: &str = r.try_get(1)?;
                let team: Option<&str> = r.try_get(8)?;
                let topics: Vec<&str> = r.try_get(10)?;
                let has_reply: bool = r.try_get(14)?;
                let status: Option<&str> = r.try_get(15)?;
                let own: Option<bool> = r.try_get(17)?;
                let reply = match (with_replies && has_reply, status, own) {
                    (true, Some(status), Some(false)) => {
                        Some(rows::outbox_status(status, r.try_get(16)?)?)
                    }
                    _ => None,
                };
                let brief = MessageBrief {
                    seq: seq as u64,
                    channel: rows::parse(channel)?,
                    id: r.try_get(2)?,
                    conversation: r.try_get(3)?,
                    author: r.try_get(4)?,
                    received_at: r.try_get(5)?,
                    stored_at: r.try_get(6)?,
                    action: action(r.try_get(7)?)?,
                    team,
                    category: rows::parse(r.try_get(9)?)?,
                    topics: topics.into_iter().collect(),
                    sentiment: sentiment(r.try_get(11)?)?,
                    rulebook: r.try_get(12)?,
                    mode: rows::parse(r.try_get(13)?)?,
                    reply,
                };
                visit(ReportItem::Message(brief));
            }
            if page.len() < 4096 {
                break;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub(super) fn report_count(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        filter: &CountFilter<'_>,
        visit: &mut dyn FnMut(ReportItem<'_>),
    ) -> Result<Counted, PgErr> {
        let mut conn = self.conn()?;
        let mut tx = snapshot(&mut conn)?;
        // The replies with details of their own, from the same first message on as the scan.
        if own_replies(&mut tx, since, until, visit)?.is_none() {
            return Ok(Counted::default());
        }
        // The same messages as the builder counts: its filters, in SQL. A message without a
        // team is not one of a team's.
        let channel = filter.channel.map(|c| c.as_str());
        let params: [&(dyn postgres::types::ToSql + Sync); 5] = [
            &since,
            &until,
            &filter.except_author,
            &channel,
            &filter.team,
        ];
        let which = "received_at >= $1 AND received_at < $2 AND author <> $3
                     AND ($4::text IS NULL OR channel = $4) AND ($5::text IS NULL OR team = $5)";
        let messages: i64 = tx
            .query_one(
                &format!("SELECT count(*) FROM messages WHERE {which}"),
                &params,
            )?
            .try_get(0)?;
        let mut topics = Vec::new();
        for row in tx.query(
            &format!(
                "SELECT t, count(*) FROM messages, unnest(topics) AS t WHERE {which} GROUP BY t"
            ),
            &params,
        )? {
            topics.push((
                row.try_get::<_, String>(0)?,
                row.try_get::<_, i64>(1)? as u64,
            ));
        }
        tx.commit()?;
        Ok(Counted {
            messages: messages as u64,
            topics,
        })
    }
}

/// One read-only snapshot for a whole pass, so replies and messages agree.
fn snapshot(conn: &mut postgres::Client) -> Result<postgres::Transaction<'_>, PgErr> {
    Ok(conn
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?)
}

/// Hands over the replies with details of their own (sent apart from their message), from the
/// period's first message on, and returns that message's `seq`; `None` when the period has no
/// messages.
fn own_replies(
    tx: &mut postgres::Transaction<'_>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    visit: &mut dyn FnMut(ReportItem<'_>),
) -> Result<Option<i64>, PgErr> {
    let first: Option<i64> = tx
        .query_one(
            "SELECT min(seq) FROM messages WHERE received_at >= $1 AND received_at < $2",
            &[&since, &until],
        )?
        .try_get(0)?;
    let Some(first) = first else {
        return Ok(None);
    };
    for row in tx.query(
        &format!(
            "SELECT {} FROM outbox WHERE own_details AND id >= $1 ORDER BY id",
            rows::OUTBOX_COLUMNS
        ),
        &[&first],
    )? {
        visit(ReportItem::Reply(rows::outbox(&row)?.0));
    }
    Ok(Some(first))
}

fn action(name: &str) -> Result<ActionKind, PgErr> {
    match name {
        "answer" => Ok(ActionKind::Answer),
        "escalate" => Ok(ActionKind::Escalate),
        "log" => Ok(ActionKind::Log),
        other => Err(super::corrupt(format!("unknown action `{other}`"))),
    }
}

fn sentiment(name: &str) -> Result<crate::decision::SentimentLabel, PgErr> {
    use crate::decision::SentimentLabel;
    [
        SentimentLabel::Negative,
        SentimentLabel::Neutral,
        SentimentLabel::Positive,
    ]
    .into_iter()
    .find(|s| s.as_str() == name)
    .ok_or_else(|| super::corrupt(format!("unknown sentiment `{name}`")))
}
