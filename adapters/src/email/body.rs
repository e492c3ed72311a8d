//! The words of a mail the rules should judge. A reply carries the organisation's own earlier
//! answer beneath it (a holding reply that says "call 112" would send a thank-you to the
//! crisis team), a signature, and often a company's confidentiality disclaimer (whose
//! "liability" and "intended recipient" read as a legal matter). A forward is the opposite
//! case: the mail it carries is what the person wants us to read (a contractor's letter, a
//! threat they received), so it is kept, its header block reduced to its subject.

/// A line that starts the quoted history of a reply: "On … wrote:", "Op … schreef …:", an
/// Outlook "-----Original Message-----", a line of underscores, or a "From:" block below
/// the person's own words.
fn starts_history(lower: &str, has_words: bool) -> bool {
    (lower.starts_with("on ") && lower.ends_with("wrote:"))
        || (lower.starts_with("op ")
            && (lower.ends_with("schreef:") || lower.contains(" schreef "))
            && lower.ends_with(':'))
        || lower.starts_with("-----original message")
        || lower.starts_with("-----oorspronkelijk bericht")
        || lower.starts_with("________________________________")
        || ((lower.starts_with("from:") || lower.starts_with("van:")) && has_words)
}

/// A line that starts a forwarded mail: Gmail's and Thunderbird's "---------- Forwarded
/// message ---------", Apple Mail's "Begin forwarded message:", in Dutch and English.
fn starts_forward(lower: &str) -> bool {
    (lower.starts_with("-----") || lower.starts_with("begin "))
        && ["forwarded message", "doorgestuurd bericht"]
            .iter()
            .any(|marker| lower.contains(marker))
}

/// Whether a subject says the mail is a forward ("Fwd:", "FW:", Dutch Outlook's "Doorst:").
pub fn is_forward(subject: &str) -> bool {
    let lower = subject.trim_start().to_lowercase();
    ["fwd:", "fw:", "doorst:"]
        .iter()
        .any(|p| lower.starts_with(p))
}

/// A line that starts a signature.
fn starts_signature(line: &str, lower: &str) -> bool {
    line == "-- "
        || lower == "--"
        || lower.starts_with("sent from my ")
        || lower.starts_with("verzonden vanaf ")
        || lower.starts_with("verstuurd vanaf ")
}

/// The header lines at the top of a forwarded mail; of these only the subject means anything.
fn forwarded_header(lower: &str) -> Option<bool> {
    const HEADERS: [&str; 12] = [
        "from:",
        "van:",
        "date:",
        "datum:",
        "sent:",
        "verzonden:",
        "to:",
        "aan:",
        "cc:",
        "reply-to:",
        "subject:",
        "onderwerp:",
    ];
    let header = HEADERS.iter().find(|h| lower.starts_with(**h))?;
    Some(matches!(*header, "subject:" | "onderwerp:"))
}

/// Words that confidentiality disclaimers are made of. A paragraph holding three of them is a
/// disclaimer: a person writing about a confidential letter uses one or two.
const DISCLAIMER_WORDS: [&str; 22] = [
    "uitsluitend bestemd",
    "geadresseerde",
    "vertrouwelijk",
    "geen rechten",
    "onterecht",
    "ten onrechte",
    "verzocht",
    "verwijderen",
    "aansprakelijk",
    "virus",
    "intended recipient",
    "intended solely",
    "intended only",
    "addressee",
    "confidential",
    "privileged",
    "in error",
    "notify the sender",
    "delete",
    "liab",
    "disclaimer",
    "unauthori",
];

fn is_disclaimer(paragraph: &str) -> bool {
    let lower = paragraph.to_lowercase();
    DISCLAIMER_WORDS
        .iter()
        .filter(|word| lower.contains(**word))
        .count()
        >= 3
}

/// The lines a person wrote in this mail, and the mail they forwarded. Left out: `>`-quoted
/// lines, the quoted history of a reply, the signature, and disclaimer paragraphs after the
/// first. A forwarded mail after the person's words, or after their signature, is kept:
/// its subject and its own words, found the same way. Outlook marks a forward as it marks a
/// reply (a "From:" block), so with `forward` (the subject says "Fwd:") that block starts a
/// forwarded mail.
pub fn new_words(body: &str, forward: bool) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut has_words = false;
    let mut in_signature = false;
    let mut lines = body.lines();
    let mut forwarded = None;
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        let lower = trimmed.to_lowercase();
        if starts_forward(&lower) || (forward && starts_history(&lower, true)) {
            let header = (forward && forwarded_header(&lower).is_some()).then_some(line);
            forwarded = Some(forwarded_mail(header.into_iter().chain(lines)));
            break;
        }
        // The quoted history ends the person's part also below their signature: a forward
        // quoted in it is the thread's past, not something they forward now.
        if starts_history(&lower, has_words) {
            break;
        }
        if in_signature {
            continue;
        }
        if starts_signature(line, &lower) {
            in_signature = true;
            continue;
        }
        if !trimmed.starts_with('>') {
            has_words |= !trimmed.is_empty();
            kept.push(line.trim_end());
        }
    }
    let own = without_disclaimers(&kept.join("\n"));
    match forwarded {
        Some(forwarded) if !forwarded.is_empty() && !own.is_empty() => {
            format!("{own}\n\n{forwarded}")
        }
        Some(forwarded) if !forwarded.is_empty() => forwarded,
        _ => own,
    }
}

/// The forwarded mail below a forward line: its subject, then its own words.
fn forwarded_mail<'a>(mut lines: impl Iterator<Item = &'a str>) -> String {
    let mut subject = None;
    let mut rest = Vec::new();
    for line in lines.by_ref() {
        let trimmed = line.trim();
        match forwarded_header(&trimmed.to_lowercase()) {
            Some(true) => subject = trimmed.split_once(':').map(|(_, s)| s.trim()),
            Some(false) => {}
            None if trimmed.is_empty() => {}
            None => {
                rest.push(line);
                break;
            }
        }
    }
    rest.extend(lines);
    let words = new_words(&rest.join("\n"), false);
    match subject.filter(|s| !s.is_empty()) {
        Some(subject) if !words.is_empty() => format!("{subject}\n{words}"),
        Some(subject) => subject.to_owned(),
        None => words,
    }
}

/// The text without disclaimer paragraphs (never the first), and without blank lines at
/// either end.
fn without_disclaimers(text: &str) -> String {
    let paragraphs: Vec<&str> = text
        .split("\n\n")
        .map(|p| p.trim_matches('\n'))
        .filter(|p| !p.trim().is_empty())
        .collect();
    let mut kept = Vec::with_capacity(paragraphs.len());
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i == 0 || !is_disclaimer(paragraph) {
            kept.push(*paragraph);
        }
    }
    kept.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_loses_its_quote_and_signature() {
        let body = "Dank u, en hoe lang duurt het?\n\n-- \nAnn\n\nOp ma 2 mrt 2026 om 10:05 schreef Gemeente <gemeente@example.org>:\n> U vraagt een paspoort aan bij de balie.\n";
        assert_eq!(new_words(body, false), "Dank u, en hoe lang duurt het?");
        let quoted_inline =
            "> oude tekst\nNieuwe vraag\nOn Mon, Mar 2, 2026 Gemeente wrote:\n> antwoord\n";
        assert_eq!(new_words(quoted_inline, false), "Nieuwe vraag");
        let holding = "Dank u wel, het is al opgelost.\n\nOp di 1 dec 2026 om 09:14 schreef Gemeente <webcare@gemeente.nl>:\n> Is er direct gevaar? Bel 112.";
        assert_eq!(new_words(holding, false), "Dank u wel, het is al opgelost.");
        let iphone = "Prima, dank je.\n\nVerstuurd vanaf mijn iPhone";
        assert_eq!(new_words(iphone, false), "Prima, dank je.");
    }

    #[test]
    fn a_forward_keeps_the_forwarded_mail_and_its_subject() {
        let gmail = "Zie hieronder, wat moet ik hiermee?\n\n---------- Forwarded message ---------\nFrom: Mr. P. Jansen <p.jansen@advocaten.example>\nDate: Mon, 30 Nov 2026 at 10:00\nSubject: Ingebrekestelling\nTo: <ann@example.net>\n\nNamens mijn cliënt stel ik de gemeente in gebreke.\n\nMet vriendelijke groet,\nMr. P. Jansen\n";
        assert_eq!(
            new_words(gmail, false),
            "Zie hieronder, wat moet ik hiermee?\n\nIngebrekestelling\nNamens mijn cliënt stel ik de gemeente in gebreke.\n\nMet vriendelijke groet,\nMr. P. Jansen"
        );
        // Without a word of the person's own, after their signature, or in Dutch.
        let bare = "-------- Doorgestuurd bericht --------\nOnderwerp: Drempel\nDatum: 1 dec 2026\nVan: buurman@example.net\n\nIk weet waar die ambtenaar woont.";
        assert_eq!(
            new_words(bare, false),
            "Drempel\nIk weet waar die ambtenaar woont."
        );
        let signed = "Kijk hier eens naar.\n-- \nAnn\n\nBegin forwarded message:\n\nFrom: x@example.net\nSubject: Gas\n\nIt smells of gas at the school.";
        assert_eq!(
            new_words(signed, false),
            "Kijk hier eens naar.\n\nGas\nIt smells of gas at the school."
        );
        // Outlook's forward looks like its reply; the subject tells them apart.
        let outlook = "Ter info.\n\n________________________________\nVan: Aannemer <info@bouw.example>\nVerzonden: maandag 30 november 2026 10:00\nAan: Ann\nOnderwerp: Afsluiting gas\n\nMorgen is het gas in de Kerkstraat afgesloten.";
        assert_eq!(
            new_words(outlook, true),
            "Ter info.\n\nAfsluiting gas\nMorgen is het gas in de Kerkstraat afgesloten."
        );
        assert_eq!(new_words(outlook, false), "Ter info.");
        // A forward in the quoted history below a signature is the thread's past.
        let past = "Dank u!\n-- \nAnn\n\n-----Original Message-----\nFrom: Gemeente\n\n---------- Forwarded message ---------\nFrom: Mr. P. Jansen\nSubject: Ingebrekestelling\n\nNamens mijn cliënt stel ik u in gebreke.";
        assert_eq!(new_words(past, false), "Dank u!");
        assert!(
            is_forward("FW: Afsluiting gas") && is_forward("Fwd: x") && is_forward("Doorst: x")
        );
        assert!(!is_forward("Re: Fwd: x") && !is_forward("Fwiw"));
    }

    #[test]
    fn a_disclaimer_is_left_out_but_a_confidential_matter_is_not() {
        let nl = "Wanneer wordt het grofvuil opgehaald?\n\nMet vriendelijke groet,\nJan de Vries\n\nDit e-mailbericht is uitsluitend bestemd voor de geadresseerde. Indien u dit bericht onterecht ontvangt, wordt u verzocht de inhoud niet te gebruiken. Aan dit bericht kunnen geen rechten worden ontleend.";
        assert_eq!(
            new_words(nl, false),
            "Wanneer wordt het grofvuil opgehaald?\n\nMet vriendelijke groet,\nJan de Vries"
        );
        let en = "What time does the town hall open on Saturday?\n\nCONFIDENTIALITY NOTICE: This email and any attachments are confidential and may be legally privileged. If you are not the intended recipient, please notify the sender and delete it.";
        assert_eq!(
            new_words(en, false),
            "What time does the town hall open on Saturday?"
        );
        let matter = "Ik kreeg een brief van jullie.\n\nDie brief was vertrouwelijk maar lag open bij de buren. Wie is hiervoor aansprakelijk?";
        assert_eq!(new_words(matter, false), matter);
        // The first paragraph is the person's own, whatever words it uses.
        let first = "This is confidential: I received your letter in error, please delete my address and notify the sender.";
        assert_eq!(new_words(first, false), first);
    }
}
