//! Replies by SMTP with lettre, in the customer's thread: `In-Reply-To` the mail answered,
//! `References` its chain plus that mail, `Re:` its subject, to its sender. The Message-ID is
//! made from the outbox entry, so a retried reply is the same mail to the receiving side. Every
//! reply carries [`super::parse::LOOP_HEADER`], and the bot's own replies also
//! `Auto-Submitted: auto-replied` (RFC 3834), so other robots do not answer them; an agent's
//! reply is a person's mail and has no such mark. SMTP's permanent (5xx) answers are dead
//! letters, everything else is retried.

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use webcare_engine::ChannelKind;
use webcare_engine::store::{OutboxEntry, StoredMessage};

use super::{EmailConfig, EmailError, Security};
use crate::delivery::{BoxFuture, Deliver, DeliveryError};
use crate::gateway::Gateway;

/// What SMTP over TLS trusts: the public roots, and those of `[email] ca_file`.
fn tls_parameters(config: &EmailConfig) -> Result<TlsParameters, EmailError> {
    let mut builder = TlsParameters::builder(config.smtp.host.clone());
    if let Some(path) = &config.ca_file {
        // Checked with the IMAP side's reader first, for the same words on a bad file.
        super::read_ca_file(path)?;
        let ca_error = |reason: String| EmailError::Ca {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certificates = Certificate::from_pem(&pem).map_err(|e| ca_error(e.to_string()))?;
        builder = builder.add_root_certificate(certificates);
    }
    builder.build().map_err(|e| EmailError::Smtp(e.to_string()))
}

/// Sends outbox replies of the e-mail channel.
pub struct EmailDeliver {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
    gateway: Gateway,
}

macro_rules! raw_header {
    ($name:ident, $text:literal) => {
        #[derive(Clone)]
        struct $name(String);
        impl Header for $name {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($text)
            }
            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($name(s.to_owned()))
            }
            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

raw_header!(WebcareLoop, "X-Webcare-Loop");
raw_header!(AutoSubmitted, "Auto-Submitted");

impl EmailDeliver {
    pub fn new(config: &EmailConfig, gateway: Gateway) -> Result<Self, EmailError> {
        let smtp = &config.smtp;
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host);
        let builder = match smtp.security {
            Security::None => builder,
            Security::Tls => builder.tls(Tls::Wrapper(tls_parameters(config)?)),
            Security::Starttls => builder.tls(Tls::Required(tls_parameters(config)?)),
        }
        .port(smtp.port)
        .timeout(Some(std::time::Duration::from_secs(30)));
        let builder = match &config.smtp_login {
            Some((user, password)) => {
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()))
            }
            None => builder,
        };
        let from: Mailbox = config
            .address
            .parse()
            .map_err(|e| EmailError::Smtp(format!("the address `{}`: {e}", config.address)))?;
        Ok(EmailDeliver {
            transport: builder.build(),
            from,
            domain: config.domain().to_owned(),
            gateway,
        })
    }

    /// The mail being answered: the one named, else the thread's latest.
    async fn answered(&self, entry: &OutboxEntry) -> Result<(StoredMessage, bool), DeliveryError> {
        let (id, conversation) = (entry.in_reply_to.clone(), entry.conversation.clone());
        let created = entry.created_at;
        self.gateway
            .store(move |s| {
                let named = s.message(ChannelKind::Email, &id)?;
                let by_bot = named.as_ref().is_some_and(|m| m.stored_at == created);
                let found = match named {
                    Some(m) => Some(m),
                    None => s
                        .conversation_messages(ChannelKind::Email, &conversation)?
                        .pop(),
                };
                Ok::<_, webcare_engine::StoreError>(found.map(|m| (m, by_bot)))
            })
            .await
            .map_err(|e| DeliveryError::Temporary(format!("email: cannot read the thread: {e}")))?
            .ok_or_else(|| {
                DeliveryError::Permanent(format!(
                    "email: no mail of thread `{}` is stored to answer",
                    entry.conversation
                ))
            })
    }
}

/// Builds the reply to `answered` (its metadata: from, subject, message_id, references).
pub fn reply_mail(
    from: &Mailbox,
    domain: &str,
    entry: &OutboxEntry,
    answered: &StoredMessage,
    by_bot: bool,
) -> Result<Message, DeliveryError> {
    let meta = &answered.message.metadata;
    let to = meta.get("from").map(String::as_str).unwrap_or_default();
    let to: Mailbox = to
        .parse()
        .map_err(|e| DeliveryError::Permanent(format!("email: cannot answer `{to}`: {e}")))?;
    let subject = meta.get("subject").map(String::as_str).unwrap_or_default();
    let subject = if subject.to_ascii_lowercase().starts_with("re:") {
        subject.to_owned()
    } else if subject.is_empty() {
        "Re: uw bericht".to_owned()
    } else {
        format!("Re: {subject}")
    };
    let message_id = meta.get("message_id").cloned().unwrap_or_default();
    let mut references: Vec<String> = meta
        .get("references")
        .map(|r| r.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    references.push(message_id.clone());
    let references = references
        .iter()
        .map(|id| format!("<{}>", id.trim_matches(['<', '>'])))
        .collect::<Vec<_>>()
        .join(" ");
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(format!(
            "<webcare.{}.{}@{domain}>",
            entry.id,
            entry.created_at.timestamp()
        )))
        .in_reply_to(format!("<{}>", message_id.trim_matches(['<', '>'])))
        .references(references)
        .header(WebcareLoop(from.email.to_string()));
    if by_bot {
        builder = builder.header(AutoSubmitted("auto-replied".into()));
    }
    builder
        .body(entry.text.clone())
        .map_err(|e| DeliveryError::Permanent(format!("email: cannot build the reply: {e}")))
}

impl Deliver for EmailDeliver {
    fn deliver<'a>(&'a self, entry: &'a OutboxEntry) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let (answered, by_bot) = self.answered(entry).await?;
            let mail = reply_mail(&self.from, &self.domain, entry, &answered, by_bot)?;
            match self.transport.send(mail).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(DeliveryError::Permanent(format!("email: {e}"))),
                Err(e) => Err(DeliveryError::Temporary(format!("email: {e}"))),
            }
        })
    }
}
