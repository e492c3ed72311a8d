//! Reply templates: every text the bot may send, reviewed and versioned in the rulebook. The
//! bot never composes free text; it fills a few placeholders computed by the engine.

use rustc_hash::FxHashMap;

use crate::decision::Language;

/// Placeholders the engine fills when it renders a holding reply; `{link}` is filled at load.
pub const PLACEHOLDERS: [&str; 4] = ["next_open", "within", "deadline", "team"];

#[derive(Debug, Clone, Default)]
pub struct Template {
    pub nl: Option<String>,
    pub en: Option<String>,
    /// Texts in other languages: (ISO 639-1 code, text).
    pub other: Vec<(String, String)>,
}

/// Values for the placeholders of one rendering.
#[derive(Debug, Default)]
pub struct Vars<'a> {
    pub next_open: &'a str,
    pub within: &'a str,
    pub deadline: &'a str,
    pub team: &'a str,
}

#[derive(Debug, Default)]
pub struct Templates {
    by_id: FxHashMap<String, Template>,
    default_language: Option<Language>,
}

impl Templates {
    pub fn new(default_language: Language) -> Self {
        Templates {
            by_id: FxHashMap::default(),
            default_language: Some(default_language),
        }
    }

    pub fn insert(&mut self, id: String, template: Template) {
        self.by_id.insert(id, template);
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }

    /// The text in `language`, else in the default language.
    pub fn text(&self, id: &str, language: Language) -> Option<&str> {
        let template = self.by_id.get(id)?;
        let wanted = match language {
            Language::Nl => &template.nl,
            Language::En => &template.en,
        };
        let fallback = match self.default_language {
            Some(Language::En) => &template.en,
            _ => &template.nl,
        };
        wanted.as_deref().or(fallback.as_deref())
    }

    pub fn render(&self, id: &str, language: Language, vars: &Vars<'_>) -> Option<String> {
        Some(fill(self.text(id, language)?, vars))
    }

    /// Whether `template` has a text in the language with ISO code `code`.
    pub fn speaks(&self, id: &str, code: &str) -> bool {
        self.by_id.get(id).is_some_and(|t| match code {
            "nl" => t.nl.is_some(),
            "en" => t.en.is_some(),
            _ => t.other.iter().any(|(c, _)| c == code),
        })
    }

    /// For a customer who wrote in a language the bot does not answer in (`code`, ISO 639-1):
    /// the template's text in that language when it has one, otherwise the Dutch and the
    /// English text one after the other, so the customer most likely understands one.
    pub fn render_for_language(
        &self,
        id: &str,
        code: &str,
        vars_nl: &Vars<'_>,
        vars_en: &Vars<'_>,
    ) -> Option<String> {
        let template = self.by_id.get(id)?;
        if let Some((_, text)) = template.other.iter().find(|(c, _)| c == code) {
            return Some(fill(text, vars_nl));
        }
        match (&template.nl, &template.en) {
            (Some(nl), Some(en)) => Some(format!("{}\n\n{}", fill(nl, vars_nl), fill(en, vars_en))),
            (Some(nl), None) => Some(fill(nl, vars_nl)),
            (None, Some(en)) => Some(fill(en, vars_en)),
            (None, None) => None,
        }
    }
}

fn fill(text: &str, vars: &Vars<'_>) -> String {
    if !text.contains('{') {
        return text.to_owned();
    }
    // One pass over the text, where four `replace` calls made four copies. The chain replaces
    // in order, so a value that holds a placeholder, or a placeholder that an earlier value
    // completes, is filled in by a later step; the single pass would leave a `{` there, and
    // then the chain decides.
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let (value, skip) = [
            ("{next_open}", vars.next_open),
            ("{within}", vars.within),
            ("{deadline}", vars.deadline),
            ("{team}", vars.team),
        ]
        .into_iter()
        .find(|(name, _)| after.starts_with(name))
        .map_or(("{", 1), |(name, value)| (value, name.len()));
        out.push_str(value);
        rest = &after[skip..];
    }
    out.push_str(rest);
    if out.contains('{') {
        return text
            .replace("{next_open}", vars.next_open)
            .replace("{within}", vars.within)
            .replace("{deadline}", vars.deadline)
            .replace("{team}", vars.team);
    }
    out
}

/// Names of `{placeholders}` in `text` that the engine does not know.
pub fn unknown_placeholders(text: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            break;
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            unknown.push(name.to_owned());
        }
        rest = &after[close + 1..];
    }
    unknown
}

/// Shortens `text` to at most `limit` characters at a word edge, ending in "…". A trailing
/// link is kept whole, because the link is where the full answer lives.
pub fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let (body, link) = match text.rfind("http") {
        Some(at) if !text[at..].contains(char::is_whitespace) => {
            (text[..at].trim_end(), &text[at..])
        }
        _ => (text, ""),
    };
    let room = limit
        .saturating_sub(link.chars().count())
        .saturating_sub(if link.is_empty() { 1 } else { 2 });
    let mut cut: String = body.chars().take(room).collect();
    if let Some(space) = cut.rfind(char::is_whitespace) {
        cut.truncate(space);
    }
    let cut = cut.trim_end_matches(|c: char| c.is_whitespace() || c == ',' || c == '.');
    if link.is_empty() {
        format!("{cut}…")
    } else {
        format!("{cut}… {link}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fill_as_the_chain_of_replacements_did() {
        let chained = |text: &str, v: &Vars<'_>| {
            text.replace("{next_open}", v.next_open)
                .replace("{within}", v.within)
                .replace("{deadline}", v.deadline)
                .replace("{team}", v.team)
        };
        let plain = Vars {
            next_open: "morgen om 9:00",
            within: "4 uur",
            deadline: "vandaag 17:00",
            team: "Juridische zaken",
        };
        // A value holding a placeholder is filled by a later step of the chain.
        let nested = Vars {
            next_open: "{team} {x}",
            within: "{",
            deadline: "}",
            team: "",
        };
        for text in [
            "{team} antwoordt {within}, uiterlijk {deadline}; open {next_open}.",
            "{team}{team}{nope} {",
            "{{next_open}within} }{",
            "geen plaats",
            "{next_open",
            "é{team}ü",
        ] {
            for vars in [&plain, &nested] {
                assert_eq!(fill(text, vars), chained(text, vars), "{text}");
            }
        }
    }

    #[test]
    fn unknown_placeholders_are_found() {
        assert_eq!(
            unknown_placeholders("we {within} and {nxt_open}"),
            ["nxt_open"]
        );
        assert!(unknown_placeholders("no placeholders").is_empty());
    }

    #[test]
    fn rendering_falls_back_to_the_default_language() {
        let mut templates = Templates::new(Language::Nl);
        templates.insert(
            "hold".into(),
            Template {
                nl: Some("We reageren {next_open}.".into()),
                en: None,
                other: Vec::new(),
            },
        );
        let vars = Vars {
            next_open: "maandag vanaf 09:00",
            ..Vars::default()
        };
        assert_eq!(
            templates.render("hold", Language::En, &vars).as_deref(),
            Some("We reageren maandag vanaf 09:00.")
        );
        assert_eq!(templates.render("missing", Language::Nl, &vars), None);
    }

    #[test]
    fn other_languages_get_their_own_text_or_dutch_and_english() {
        let mut templates = Templates::new(Language::Nl);
        templates.insert(
            "hold".into(),
            Template {
                nl: Some("Een collega reageert {next_open}.".into()),
                en: Some("A colleague replies {next_open}.".into()),
                other: vec![("de".into(), "Ein Kollege antwortet {next_open}.".into())],
            },
        );
        let vars = Vars {
            next_open: "morgen",
            ..Vars::default()
        };
        assert_eq!(
            templates
                .render_for_language("hold", "de", &vars, &vars)
                .as_deref(),
            Some("Ein Kollege antwortet morgen.")
        );
        assert_eq!(
            templates
                .render_for_language("hold", "pl", &vars, &vars)
                .as_deref(),
            Some("Een collega reageert morgen.\n\nA colleague replies morgen.")
        );
        assert!(templates.speaks("hold", "de") && !templates.speaks("hold", "pl"));
    }

    #[test]
    fn shorten_keeps_the_link_and_the_limit() {
        let text = "Een paspoort vraagt u aan op afspraak in het stadskantoor. Neem een pasfoto mee. https://example.org/paspoort";
        let short = shorten(text, 60);
        assert!(short.chars().count() <= 60, "{short}");
        assert!(short.ends_with("… https://example.org/paspoort"), "{short}");
        assert_eq!(shorten("kort", 60), "kort");
        let plain = shorten("een twee drie vier vijf zes", 12);
        assert!(
            plain.chars().count() <= 12 && plain.ends_with('…'),
            "{plain}"
        );
    }
}
