//! An escalation's case state ([`CaseState`]) as the escalation record carries it. It is part of
//! that record (its last field) rather than a record of its own, because every reader of an
//! escalation wants both: the report reads the case state of every open escalation, and intake
//! of every escalation of the conversation, so a second record cost a second B-tree lookup each
//! (and, as JSON, a parse that took longer than the rest of the escalation together). Format 2
//! kept it apart as JSON; `embedded::upgrade` moves it in.

use serde::{Deserialize, Serialize};

use super::*;
use crate::case::{Announce, CaseState, Survey};
use crate::decision::Language;

/// [`CaseState`] on disk: times as microseconds, codes for the language and the events still to
/// announce.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRec {
    pub opened_at: Option<i64>,
    pub first_response_due: Option<i64>,
    pub first_response_at: Option<i64>,
    pub first_response_by: Option<String>,
    pub waiting_since: Option<i64>,
    pub resolved_at: Option<i64>,
    pub first_resolved_at: Option<i64>,
    pub reopened: u32,
    pub critical: bool,
    pub author: Option<String>,
    /// 0 Dutch, 1 English.
    pub language: Option<u8>,
    pub survey: Option<SurveyRec>,
    /// 0 arrived, 1 follow-up, 2 reopened.
    pub announce: Vec<u8>,
}

/// [`Survey`] on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyRec {
    pub asked_at: i64,
    pub agent: String,
    pub outbox: u64,
    pub score: Option<u8>,
    pub answered_at: Option<i64>,
}

fn time(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(micros)
}

fn from_time(t: Option<i64>) -> Result<Option<DateTime<Utc>>, CodecError> {
    t.map(from_micros).transpose()
}

fn language_code(language: Language) -> u8 {
    match language {
        Language::Nl => 0,
        Language::En => 1,
    }
}

fn language_from(code: u8) -> Result<Language, CodecError> {
    match code {
        0 => Ok(Language::Nl),
        1 => Ok(Language::En),
        code => Err(CodecError::UnknownCode {
            what: "language",
            code: code.into(),
        }),
    }
}

fn announce_code(kind: Announce) -> u8 {
    match kind {
        Announce::Arrived => 0,
        Announce::FollowUp => 1,
        Announce::Reopened => 2,
    }
}

fn announce_from(code: u8) -> Result<Announce, CodecError> {
    match code {
        0 => Ok(Announce::Arrived),
        1 => Ok(Announce::FollowUp),
        2 => Ok(Announce::Reopened),
        code => Err(CodecError::UnknownCode {
            what: "announcement",
            code: code.into(),
        }),
    }
}

impl CaseRec {
    pub fn of(case: &CaseState) -> Self {
        CaseRec {
            opened_at: time(case.opened_at),
            first_response_due: time(case.first_response_due),
            first_response_at: time(case.first_response_at),
            first_response_by: case.first_response_by.clone(),
            waiting_since: time(case.waiting_since),
            resolved_at: time(case.resolved_at),
            first_resolved_at: time(case.first_resolved_at),
            reopened: case.reopened,
            critical: case.critical,
            author: case.author.clone(),
            language: case.language.map(language_code),
            survey: case.survey.as_ref().map(|s| SurveyRec {
                asked_at: micros(s.asked_at),
                agent: s.agent.clone(),
                outbox: s.outbox,
                score: s.score,
                answered_at: time(s.answered_at),
            }),
            announce: case.announce.iter().copied().map(announce_code).collect(),
        }
    }

    pub fn decode(&self) -> Result<CaseState, CodecError> {
        Ok(CaseState {
            opened_at: from_time(self.opened_at)?,
            first_response_due: from_time(self.first_response_due)?,
            first_response_at: from_time(self.first_response_at)?,
            first_response_by: self.first_response_by.clone(),
            waiting_since: from_time(self.waiting_since)?,
            resolved_at: from_time(self.resolved_at)?,
            first_resolved_at: from_time(self.first_resolved_at)?,
            reopened: self.reopened,
            critical: self.critical,
            author: self.author.clone(),
            language: self.language.map(language_from).transpose()?,
            survey: match &self.survey {
                Some(s) => Some(Survey {
                    asked_at: from_micros(s.asked_at)?,
                    agent: s.agent.clone(),
                    outbox: s.outbox,
                    score: s.score,
                    answered_at: from_time(s.answered_at)?,
                }),
                None => None,
            },
            announce: self
                .announce
                .iter()
                .copied()
                .map(announce_from)
                .collect::<Result<_, _>>()?,
        })
    }
}
