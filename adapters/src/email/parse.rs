//! What a received mail means to webcare: whether it may be decided at all (auto-replies,
//! bounces, mailing lists and our own mail are not: answering them makes mail loops), which
//! thread it belongs to, and the text a person actually wrote (HTML reduced to text by
//! `mail-parser`; what of the body counts is `body.rs`'s).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use webcare_engine::{ChannelKind, Inbound};

use super::body;

/// The header webcare puts on every mail it sends; a mail carrying it came from a webcare.
pub const LOOP_HEADER: &str = "X-Webcare-Loop";

/// Why a mail is not decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("not a readable mail")]
    Unreadable,
    #[error("an automatic mail ({0})")]
    Automatic(String),
    #[error("a bounce ({0})")]
    Bounce(String),
    #[error("a mailing list mail")]
    List,
    #[error("sent by webcare itself")]
    Loop,
    #[error("no sender address")]
    NoSender,
    #[error("nothing written above the quoted history")]
    Empty,
}

/// Turns raw mail into webcare's message. `own` is the address webcare sends from; `fallback`
/// is the message id to use when the mail has no Message-ID (`<uidvalidity>.<uid>`).
pub fn to_inbound(raw: &[u8], own: &str, fallback: &str) -> Result<Inbound, Skip> {
    let mail = MessageParser::default()
        .parse(raw)
        .ok_or(Skip::Unreadable)?;
    let header = |name: &str| mail.header_raw(name).map(|v| v.trim().to_owned());

    if header(LOOP_HEADER).is_some() {
        return Err(Skip::Loop);
    }
    if let Some(auto) = header("Auto-Submitted").filter(|v| !v.eq_ignore_ascii_case("no")) {
        return Err(Skip::Automatic(format!("Auto-Submitted: {auto}")));
    }
    if let Some(precedence) = header("Precedence") {
        let p = precedence.to_ascii_lowercase();
        if ["bulk", "junk", "list", "auto_reply"].contains(&p.as_str()) {
            return Err(Skip::Automatic(format!("Precedence: {precedence}")));
        }
    }
    for name in ["X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"] {
        if let Some(value) = header(name)
            && (name != "X-Auto-Response-Suppress" || value.to_ascii_lowercase().contains("oof"))
        {
            return Err(Skip::Automatic(format!("{name}: {value}")));
        }
    }
    if header("List-Id").is_some() || header("List-Unsubscribe").is_some() {
        return Err(Skip::List);
    }
    let content_type = mail
        .content_type()
        .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()).to_ascii_lowercase())
        .unwrap_or_default();
    if content_type == "multipart/report" {
        return Err(Skip::Bounce("a delivery report".into()));
    }
    if header("Return-Path").is_some_and(|r| r.trim() == "<>") {
        return Err(Skip::Bounce("empty return path".into()));
    }
    let from = mail
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_ascii_lowercase)
        .ok_or(Skip::NoSender)?;
    let local = from.split('@').next().unwrap_or_default();
    if ["mailer-daemon", "postmaster"].contains(&local) {
        return Err(Skip::Bounce(from));
    }
    if from.eq_ignore_ascii_case(own) {
        return Err(Skip::Loop);
    }

    let message_id = mail
        .message_id()
        .map(|id| id.to_owned())
        .unwrap_or_else(|| fallback.to_owned());
    let references = ids(mail.references());
    let in_reply_to = ids(mail.in_reply_to());
    // The thread is named by its first mail: the oldest reference, else what it answers.
    let thread = references
        .first()
        .or(in_reply_to.first())
        .cloned()
        .unwrap_or_else(|| message_id.clone());
    let body = mail
        .body_text(0)
        .map(|t| t.into_owned())
        .unwrap_or_default();
    let subject = mail.subject().unwrap_or_default().trim().to_owned();
    let mut text = body::new_words(&body, body::is_forward(&subject));
    if text.is_empty() && !references.is_empty() {
        return Err(Skip::Empty);
    }
    if text.is_empty() {
        // A mail with only a subject: the subject is the question.
        text = subject.clone();
    } else if references.is_empty() && !subject.is_empty() {
        // The subject of a first mail often holds the question ("Paspoort verlopen").
        text = format!("{subject}\n{text}");
    }
    if text.trim().is_empty() {
        return Err(Skip::Empty);
    }
    let received_at = mail
        .date()
        .and_then(|d| Utc.timestamp_opt(d.to_timestamp(), 0).single())
        .unwrap_or_else(Utc::now);
    let mut metadata = BTreeMap::new();
    metadata.insert("from".to_owned(), from.clone());
    metadata.insert("subject".to_owned(), subject);
    metadata.insert("message_id".to_owned(), message_id.clone());
    let mut chain = references.clone();
    if chain.is_empty() {
        chain.extend(in_reply_to);
    }
    metadata.insert("references".to_owned(), chain.join(" "));
    if let Some(name) = mail.from().and_then(|a| a.first()).and_then(|a| a.name()) {
        metadata.insert("display_name".to_owned(), name.to_owned());
    }
    Ok(Inbound {
        id: message_id,
        channel: ChannelKind::Email,
        conversation: thread,
        author: from,
        text,
        received_at: clamp(received_at),
        metadata,
    })
}

/// A Date header far in the future would keep a conversation's facts from ever aging.
fn clamp(at: DateTime<Utc>) -> DateTime<Utc> {
    at.min(Utc::now() + chrono::Duration::minutes(5))
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![id.to_string()],
        HeaderValue::TextList(ids) => ids.iter().map(|id| id.to_string()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "gemeente@example.org";

    fn mail(headers: &str, body: &str) -> Vec<u8> {
        format!(
            "From: Ann de Vries <ann@example.net>\r\nTo: {OWN}\r\nSubject: Paspoort\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <q1@example.net>\r\n{headers}\r\n{body}"
        )
        .into_bytes()
    }

    #[test]
    fn a_first_mail_is_its_own_thread_and_the_subject_is_read() {
        let m = to_inbound(
            &mail("", "Hoe vraag ik een nieuw paspoort aan?\r\n"),
            OWN,
            "x",
        )
        .unwrap();
        assert_eq!(m.id, "q1@example.net");
        assert_eq!(m.conversation, "q1@example.net");
        assert_eq!(m.author, "ann@example.net");
        assert!(m.text.starts_with("Paspoort\nHoe vraag ik"), "{}", m.text);
        assert_eq!(m.metadata["display_name"], "Ann de Vries");
    }

    #[test]
    fn a_reply_joins_the_thread_of_its_first_mail_without_the_quote_or_signature() {
        let body = "Dank u, en hoe lang duurt het?\r\n\r\n-- \r\nAnn\r\n\r\nOp ma 2 mrt 2026 om 10:05 schreef Gemeente <gemeente@example.org>:\r\n> U vraagt een paspoort aan bij de balie.\r\n";
        let headers = "In-Reply-To: <webcare.1@example.org>\r\nReferences: <q0@example.net> <webcare.1@example.org>\r\n";
        let m = to_inbound(&mail(headers, body), OWN, "x").unwrap();
        assert_eq!(m.conversation, "q0@example.net");
        assert_eq!(m.text, "Dank u, en hoe lang duurt het?");
        let quoted_inline =
            "> oude tekst\r\nNieuwe vraag\r\nOn Mon, Mar 2, 2026 Gemeente wrote:\r\n> antwoord\r\n";
        let m = to_inbound(&mail(headers, quoted_inline), OWN, "x").unwrap();
        assert_eq!(m.text, "Nieuwe vraag");
    }

    #[test]
    fn html_mail_is_reduced_to_text() {
        let headers = "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n";
        let m = to_inbound(
            &mail(
                headers,
                "<html><body><p>Wanneer is het <b>milieupark</b> open?</p></body></html>\r\n",
            ),
            OWN,
            "x",
        )
        .unwrap();
        assert!(
            m.text.contains("Wanneer is het milieupark open?"),
            "{}",
            m.text
        );
        assert!(!m.text.contains('<'), "{}", m.text);
    }

    #[test]
    fn auto_replies_bounces_lists_and_our_own_mail_are_not_decided() {
        let body = "Ik ben afwezig tot maandag.\r\n";
        let cases = [
            ("Auto-Submitted: auto-replied\r\n", "Auto-Submitted"),
            ("Precedence: bulk\r\n", "Precedence"),
            ("X-Autoreply: yes\r\n", "X-Autoreply"),
            ("List-Id: <nieuws.example.net>\r\n", "list"),
            (
                "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
                "report",
            ),
            ("X-Webcare-Loop: gemeente@example.org\r\n", "webcare"),
        ];
        for (headers, why) in cases {
            let skip = to_inbound(&mail(headers, body), OWN, "x").unwrap_err();
            assert!(skip.to_string().contains(why), "{headers}: {skip}");
        }
        assert!(to_inbound(&mail("Auto-Submitted: no\r\n", body), OWN, "x").is_ok());
        let daemon = b"From: MAILER-DAEMON@example.net\r\nSubject: Undelivered\r\n\r\nfailed\r\n";
        assert!(matches!(to_inbound(daemon, OWN, "x"), Err(Skip::Bounce(_))));
        let own = format!("From: {OWN}\r\nSubject: x\r\n\r\nhallo\r\n");
        assert_eq!(to_inbound(own.as_bytes(), OWN, "x"), Err(Skip::Loop));
    }
}
