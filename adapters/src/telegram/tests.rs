//! Telegram's updates, the Bot API's answers, webhook checks and backoff, tested without a network.

use super::*;

fn me() -> Me {
    serde_json::from_value(serde_json::json!({
        "id": 99, "is_bot": true, "first_name": "Gemeente", "username": "gemeente_bot",
        "can_join_groups": true, "can_read_all_group_messages": false,
        "supports_inline_queries": false, "can_connect_to_business": false,
        "has_main_web_app": false
    }))
    .unwrap()
}

fn message(from: serde_json::Value, text: Option<&str>) -> Message {
    let mut value = serde_json::json!({
        "message_id": 7, "date": 1_700_000_000,
        "chat": { "id": 42, "type": "private", "first_name": "Ann" },
        "from": from,
    });
    match text {
        Some(text) => value["text"] = text.into(),
        None => {
            value["sticker"] = serde_json::json!({
                "file_id": "f", "file_unique_id": "u", "type": "regular", "width": 1,
                "height": 1, "is_animated": false, "is_video": false
            })
        }
    }
    serde_json::from_value(value).unwrap()
}

fn ann() -> serde_json::Value {
    serde_json::json!({ "id": 5, "is_bot": false, "first_name": "Ann", "last_name": "de Vries", "username": "ann" })
}

#[test]
fn a_text_message_becomes_an_inbound() {
    let inbound = to_inbound(
        &message(ann(), Some("Wanneer is het milieupark open?")),
        &me(),
    )
    .unwrap();
    assert_eq!(inbound.id, "42:7");
    assert_eq!(inbound.conversation, "42");
    assert_eq!(inbound.author, "5");
    assert_eq!(inbound.channel, ChannelKind::Telegram);
    assert_eq!(inbound.received_at.timestamp(), 1_700_000_000);
    assert_eq!(inbound.metadata["display_name"], "Ann de Vries");
    assert_eq!(inbound.metadata["username"], "ann");
}

#[test]
fn bots_ourselves_and_stickers_are_skipped() {
    let bot = serde_json::json!({ "id": 77, "is_bot": true, "first_name": "Other" });
    assert_eq!(
        to_inbound(&message(bot, Some("hi")), &me()),
        Err(Skip::FromBot)
    );
    let us = serde_json::json!({ "id": 99, "is_bot": false, "first_name": "Us" });
    assert_eq!(
        to_inbound(&message(us, Some("hi")), &me()),
        Err(Skip::FromBot)
    );
    assert_eq!(to_inbound(&message(ann(), None), &me()), Err(Skip::NotText));
}

#[test]
fn bot_api_answers_are_classified() {
    assert_eq!(classify(200, br#"{"ok":true,"result":{}}"#), Ok(()));
    assert_eq!(
        classify(
            429,
            br#"{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":3}}"#
        ),
        Err(DeliveryError::RateLimited { retry_after: Duration::from_secs(3) })
    );
    assert!(matches!(
        classify(500, b"oops"),
        Err(DeliveryError::Temporary(_))
    ));
    assert!(matches!(
        classify(502, b""),
        Err(DeliveryError::Temporary(_))
    ));
    let blocked = classify(
        403,
        br#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
    );
    assert!(
        matches!(&blocked, Err(DeliveryError::Permanent(m)) if m.contains("blocked")),
        "{blocked:?}"
    );
    assert!(matches!(
        classify(
            400,
            br#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#
        ),
        Err(DeliveryError::Permanent(_))
    ));
    assert!(matches!(
        classify(401, b""),
        Err(DeliveryError::Temporary(_))
    ));
}

#[test]
fn replies_quote_the_question_in_groups_only() {
    assert_eq!(thread_reply(-100_123, "-100123:45"), Some(45));
    assert_eq!(thread_reply(42, "42:7"), None);
    assert_eq!(thread_reply(-100_123, "-100999:45"), None);
    assert_eq!(thread_reply(-100_123, "agent"), None);
}

#[test]
fn webhook_urls_and_secrets_are_checked() {
    let hook = |url: &str, secret: Option<&str>| WebhookConfig {
        url: url.to_owned(),
        secret: secret.map(Secret::new),
    };
    let url = check_webhook(&hook(
        "https://bot.example.org/telegram/updates",
        Some("a_B-9"),
    ))
    .unwrap();
    assert_eq!(url.path(), "/telegram/updates");
    for bad in [
        "https://bot.example.org",
        "https://bot.example.org/",
        "ftp://bot.example.org/x",
        "https://bot.example.org/api/v1/messages",
        "https://bot.example.org/inbox",
        "https://bot.example.org/x?token=1",
        "not a url",
    ] {
        assert!(
            matches!(
                check_webhook(&hook(bad, None)),
                Err(TelegramError::WebhookUrl { .. })
            ),
            "{bad}"
        );
    }
    let long = "x".repeat(257);
    for secret in ["", "with space", "semi;colon", long.as_str()] {
        let error = check_webhook(&hook("https://b.example/t", Some(secret))).unwrap_err();
        assert!(matches!(error, TelegramError::WebhookSecret), "{secret:?}");
        assert!(secret.is_empty() || !error.to_string().contains(secret));
    }
}

#[test]
fn backoff_doubles_up_to_the_ceiling() {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
    let waits: Vec<_> = (0..5).map(|_| backoff.next_delay().as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 5, 5]);
    backoff.reset();
    assert_eq!(backoff.next_delay(), Duration::from_secs(1));
}
