//! A conversation as the rules see it: who owns it (the bot or a person), and the counters the
//! scripts read as facts (messages today, automatic replies, recent complaints). One
//! definition of the facts, so the facts a decision saw and the facts a stored conversation
//! shows can never disagree.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::decision::Category;

/// Who owns a conversation right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationState {
    /// The bot answers.
    #[default]
    Bot,
    /// A human agent owns it; the bot stays silent.
    Human,
    Closed,
}

impl ConversationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationState::Bot => "bot",
            ConversationState::Human => "human",
            ConversationState::Closed => "closed",
        }
    }

    /// A person took the case (claimed it or replied): the bot goes silent.
    pub fn taken_by_person(self) -> Self {
        ConversationState::Human
    }

    /// The case was resolved: a conversation a person owned goes back to the bot; a closed
    /// one stays closed.
    pub fn after_resolve(self) -> Self {
        match self {
            ConversationState::Human => ConversationState::Bot,
            other => other,
        }
    }
}

/// What the store knows about the conversation a message belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationFacts {
    pub state: ConversationState,
    pub messages_today: i64,
    pub auto_replies: i64,
    pub complaints_24h: i64,
    pub complaints_7d: i64,
    /// A satisfaction question waits for the customer's next message: a score is its answer
    /// (see [`super::satisfaction`]). Not shown to the scripts and not kept with a message.
    #[serde(skip)]
    pub awaiting_score: bool,
}

impl ConversationFacts {
    /// The facts, with whether a satisfaction question waits.
    pub fn awaiting(mut self, awaiting_score: bool) -> Self {
        self.awaiting_score = awaiting_score;
        self
    }
}

/// How long a complaint counts: the longest window of the facts.
const COMPLAINT_WINDOW_DAYS: i64 = 7;

/// The counters of a conversation that intake keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub last_activity: DateTime<Utc>,
    pub messages: u64,
    /// The local date `messages_today` counts.
    pub today: NaiveDate,
    pub messages_today: i64,
    /// Automatic replies (answers and holding replies) sent into it.
    pub auto_replies: i64,
    /// When its complaints arrived, the last seven days only.
    pub recent_complaints: Vec<DateTime<Utc>>,
}

impl Tally {
    /// A conversation that starts with a message received at `received` (local date `today`).
    pub fn new(received: DateTime<Utc>, today: NaiveDate) -> Self {
        Tally {
            last_activity: received,
            messages: 0,
            today,
            messages_today: 0,
            auto_replies: 0,
            recent_complaints: Vec::new(),
        }
    }

    /// The facts a decision at `at` (local date `today`) may read. A complaint counts in a
    /// window when it arrived before `at` and less than the window's length before it.
    pub fn facts(
        &self,
        state: ConversationState,
        at: DateTime<Utc>,
        today: NaiveDate,
    ) -> ConversationFacts {
        let within = |days: i64| {
            self.recent_complaints
                .iter()
                .filter(|t| {
                    **t <= at && at.signed_duration_since(**t) < chrono::Duration::days(days)
                })
                .count() as i64
        };
        ConversationFacts {
            state,
            messages_today: if self.today == today {
                self.messages_today
            } else {
                0
            },
            auto_replies: self.auto_replies,
            complaints_24h: within(1),
            complaints_7d: within(COMPLAINT_WINDOW_DAYS),
            awaiting_score: false,
        }
    }

    /// Counts a message received at `received` (local date `today`). A message of an earlier
    /// day (delivered late) counts for the conversation, not for today; complaints older than
    /// a week before the last activity are forgotten.
    pub fn count(&mut self, received: DateTime<Utc>, today: NaiveDate, category: Category) {
        self.last_activity = self.last_activity.max(received);
        self.messages += 1;
        if self.today == today {
            self.messages_today += 1;
        } else if today > self.today {
            self.today = today;
            self.messages_today = 1;
        }
        if category == Category::Complaint {
            self.recent_complaints.push(received);
        }
        let last = self.last_activity;
        self.recent_complaints.retain(|t| {
            last.signed_duration_since(*t) < chrono::Duration::days(COMPLAINT_WINDOW_DAYS)
        });
    }

    /// The bot queued an automatic reply: the loop guard in governance.rhai counts these.
    pub fn replied(&mut self) {
        self.auto_replies += 1;
    }

    /// A person closed the case: the bot's budget of automatic replies starts again for
    /// whatever the customer asks next.
    pub fn case_resolved(&mut self) {
        self.auto_replies = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000 + h * 3600, 0).unwrap_or_default()
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap_or_default()
    }

    #[test]
    fn messages_today_start_again_on_a_new_day_and_ignore_late_ones() {
        let mut t = Tally::new(at(0), day(10));
        t.count(at(0), day(10), Category::Question);
        t.count(at(1), day(10), Category::Question);
        assert_eq!(
            t.facts(ConversationState::Bot, at(2), day(10))
                .messages_today,
            2
        );
        assert_eq!(
            t.facts(ConversationState::Bot, at(30), day(11))
                .messages_today,
            0
        );
        t.count(at(30), day(11), Category::Question);
        // Delivered late: counts for the conversation, not for today.
        t.count(at(-20), day(9), Category::Question);
        assert_eq!((t.messages, t.messages_today, t.today), (4, 1, day(11)));
        assert_eq!(t.last_activity, at(30));
    }

    #[test]
    fn complaints_count_in_their_windows_and_are_forgotten_after_a_week() {
        let mut t = Tally::new(at(0), day(10));
        t.count(at(0), day(10), Category::Complaint);
        t.count(at(30), day(11), Category::Complaint);
        let facts = t.facts(ConversationState::Bot, at(31), day(11));
        assert_eq!((facts.complaints_24h, facts.complaints_7d), (1, 2));
        // A complaint after the moment asked about does not count yet.
        assert_eq!(
            t.facts(ConversationState::Bot, at(10), day(10))
                .complaints_7d,
            1
        );
        t.count(at(24 * 9), day(19), Category::Question);
        assert!(t.recent_complaints.is_empty());
    }

    #[test]
    fn replies_are_counted_until_a_person_resolves_the_case() {
        let mut t = Tally::new(at(0), day(10));
        t.replied();
        t.replied();
        assert_eq!(
            t.facts(ConversationState::Bot, at(0), day(10)).auto_replies,
            2
        );
        t.case_resolved();
        assert_eq!(t.auto_replies, 0);
    }

    #[test]
    fn resolving_hands_a_persons_conversation_back_to_the_bot_only() {
        assert_eq!(
            ConversationState::Human.after_resolve(),
            ConversationState::Bot
        );
        assert_eq!(
            ConversationState::Closed.after_resolve(),
            ConversationState::Closed
        );
        assert_eq!(
            ConversationState::Bot.taken_by_person(),
            ConversationState::Human
        );
    }
}
