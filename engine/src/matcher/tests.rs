//! The matcher's constructs, each against the messages it must and must not match.

use super::*;
use crate::normalize::normalize;

fn topic(id: &str, category: Category, keywords: &[&str]) -> TopicSpec {
    TopicSpec {
        id: id.into(),
        category,
        keywords: keywords.iter().map(|s| s.to_string()).collect(),
        patterns: vec![],
        exclude: vec![],
        options: MatchOptions::default(),
    }
}

fn build(topics: Vec<TopicSpec>) -> Matcher {
    build_with(topics, MatcherSettings::default())
}

fn build_with(topics: Vec<TopicSpec>, settings: MatcherSettings) -> Matcher {
    Matcher::build(topics, rank, settings).expect("builds")
}

fn rank(c: Category) -> u8 {
    match c {
        Category::Crisis => 0,
        Category::Complaint => 1,
        _ => 5,
    }
}

fn ids(m: &Matcher, text: &str) -> Vec<String> {
    m.find(&normalize(text))
        .into_iter()
        .map(|t| t.topic)
        .collect()
}

#[test]
fn keywords_respect_word_edges_unless_written_as_prefix() {
    let m = build(vec![
        topic("pass", Category::Question, &["pas"]),
        topic("passport", Category::Question, &["paspoort*"]),
    ]);
    assert_eq!(ids(&m, "Mijn paspoort is verlopen"), ["passport"]);
    assert_eq!(ids(&m, "paspoorten aanvragen"), ["passport"]);
    assert_eq!(ids(&m, "ik ben mijn pas kwijt"), ["pass"]);
    assert_eq!(ids(&m, "kompas"), Vec::<String>::new());
    assert_eq!(ids(&m, "PAS!"), ["pass"]);
}

#[test]
fn phrases_accents_and_punctuation_match_after_normalisation() {
    let m = build(vec![topic(
        "gas",
        Category::Crisis,
        &["gaslucht", "ruik gas"],
    )]);
    assert_eq!(ids(&m, "Ik RUIK gas in de straat!"), ["gas"]);
    assert_eq!(ids(&m, "gáslücht bij de school"), ["gas"]);
    assert_eq!(ids(&m, "ik ruik gasbellen"), Vec::<String>::new());
}

#[test]
fn exclusions_veto_a_topic_and_patterns_match_normalised_text() {
    let mut fire = topic("fire", Category::Crisis, &["brand"]);
    fire.exclude = vec!["brandweerkazerne".into(), "brandstof*".into()];
    let mut postcode = topic("postcode", Category::Question, &[]);
    postcode.patterns = vec![r"\b\d{4} ?[a-z]{2}\b".into()];
    let m = build(vec![fire, postcode]);
    assert_eq!(ids(&m, "Brand in de keuken"), ["fire"]);
    assert_eq!(
        ids(&m, "brand bij de brandweerkazerne open dag"),
        Vec::<String>::new()
    );
    let found = m.find(&normalize("Wonen op 1234 AB"));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].matched, [r"/\b\d{4} ?[a-z]{2}\b/"]);
}

#[test]
fn stronger_categories_come_first_then_rulebook_order() {
    let m = build(vec![
        topic("waste", Category::Question, &["afval"]),
        topic("complaint", Category::Complaint, &["klacht"]),
        topic("fire", Category::Crisis, &["brand"]),
    ]);
    assert_eq!(
        ids(&m, "klacht over afval en brand"),
        ["fire", "complaint", "waste"]
    );
}

#[test]
fn keywords_without_letters_are_rejected_with_their_position() {
    let errors = Matcher::build(
        vec![topic("x", Category::Question, &["ok", "?!"])],
        rank,
        MatcherSettings::default(),
    )
    .err()
    .unwrap_or_default();
    assert!(matches!(
        &errors[..],
        [TermError::Keyword(0, TermList::Keywords, 1, _)]
    ));
}

fn with(options: MatchOptions, mut spec: TopicSpec) -> TopicSpec {
    spec.options = options;
    spec
}

const ALL: MatchOptions = MatchOptions {
    stems: true,
    compounds: true,
    typos: true,
    negation: true,
};

fn matched(m: &Matcher, text: &str) -> Vec<String> {
    m.find(&normalize(text))
        .into_iter()
        .flat_map(|t| t.matched)
        .collect()
}

#[test]
fn stems_match_other_inflections_only_when_the_topic_asks() {
    let stems = MatchOptions {
        stems: true,
        ..MatchOptions::default()
    };
    let m = build(vec![
        with(
            stems,
            topic("appeal", Category::Legal, &["beroep", "appeal"]),
        ),
        topic("plain", Category::Question, &["aanvraag"]),
    ]);
    assert_eq!(matched(&m, "wij gaan in beroep"), ["beroep"]);
    // The keyword itself is not stemmed again, and still explains itself once, as
    // written, beside an inflection of it.
    assert_eq!(matched(&m, "beroep tegen de beroepen"), ["beroep"]);
    assert_eq!(
        matched(&m, "de beroepen zijn ingesteld"),
        ["beroepen ~ beroep"]
    );
    assert_eq!(
        matched(&m, "we are appealing the decision"),
        ["appealing ~ appeal"]
    );
    assert_eq!(ids(&m, "beroepsgeheim"), Vec::<String>::new());
    assert_eq!(
        ids(&m, "twee aanvragen"),
        Vec::<String>::new(),
        "stems are off"
    );
}

#[test]
fn compounds_find_a_keyword_inside_a_longer_word() {
    let m = build(vec![
        with(ALL, topic("flood", Category::Crisis, &["doorbraak"])),
        with(ALL, topic("passport", Category::Question, &["paspoort"])),
        with(ALL, topic("exact", Category::Question, &["=brand"])),
    ]);
    assert_eq!(
        matched(&m, "dreigt een dijkdoorbraak"),
        ["dijkdoorbraak ⊃ doorbraak"]
    );
    assert_eq!(
        matched(&m, "mijn paspoortaanvraag"),
        ["paspoortaanvraag ⊃ paspoort"]
    );
    assert_eq!(
        ids(&m, "brandweerkazerne"),
        Vec::<String>::new(),
        "exact terms stay whole"
    );
    assert_eq!(
        ids(&m, "paspoortje"),
        Vec::<String>::new(),
        "a two-letter rest is no compound"
    );
    // Letters, not bytes: a four-letter Arabic word (eight bytes) is too short to be a
    // part, so "تغرق" (drowns) is not found in "يستغرق" (it takes).
    let arabic = build(vec![with(ALL, topic("drown", Category::Crisis, &["تغرق"]))]);
    assert_eq!(ids(&arabic, "الامر يستغرق وقتا"), Vec::<String>::new());
    assert_eq!(ids(&arabic, "سيارة تغرق"), ["drown"]);
}

#[test]
fn an_ending_after_the_keyword_makes_another_word_of_it() {
    let settings = MatcherSettings {
        compound_endings: vec!["ling".into(), "lingen".into()],
        ..MatcherSettings::default()
    };
    let m = build_with(
        vec![with(ALL, topic("idea", Category::Idea, &["voorstel"]))],
        settings,
    );
    assert_eq!(
        ids(&m, "is er plek bij de theatervoorstelling"),
        Vec::<String>::new(),
        "a show is no proposal"
    );
    assert_eq!(ids(&m, "de kindervoorstellingen"), Vec::<String>::new());
    assert_eq!(
        matched(&m, "mijn verbetervoorstel"),
        ["verbetervoorstel ⊃ voorstel"],
        "the keyword at the end of a compound still counts"
    );
    assert_eq!(
        matched(&m, "een begrotingsvoorstelpunt"),
        ["begrotingsvoorstelpunt ⊃ voorstel"],
        "a word after it, not an ending, still counts"
    );
}

#[test]
fn typos_match_long_words_and_explain_themselves() {
    let m = build(vec![
        with(ALL, topic("licence", Category::Question, &["rijbewijs"])),
        with(ALL, topic("bulky", Category::Question, &["grofvuil"])),
        with(ALL, topic("gas", Category::Crisis, &["gas"])),
        topic("off", Category::Question, &["container"]),
    ]);
    assert_eq!(
        matched(&m, "mn rijbewjis is verlopen"),
        ["rijbewjis ≈ rijbewijs"]
    );
    assert_eq!(matched(&m, "ophaaldag grofvil"), ["grofvil ≈ grofvuil"]);
    assert_eq!(
        ids(&m, "gaz"),
        Vec::<String>::new(),
        "no typos below five letters"
    );
    assert_eq!(ids(&m, "contianer"), Vec::<String>::new(), "typos are off");
    let prefix = build(vec![with(
        ALL,
        topic("licence", Category::Question, &["rijbewijs*"]),
    )]);
    assert_eq!(matched(&prefix, "mn rijbewjis"), ["rijbewjis ≈ rijbewijs*"]);
}

#[test]
fn near_needs_both_words_close_in_either_order() {
    let m = build(vec![topic(
        "dike",
        Category::Crisis,
        &["rivier NEAR/5 dijk*"],
    )]);
    assert_eq!(ids(&m, "de rivier staat tot aan de dijk"), ["dike"]);
    assert_eq!(ids(&m, "de dijken en de rivier"), ["dike"]);
    assert_eq!(
        ids(
            &m,
            "de rivier is mooi vandaag en gisteren liepen we nog op de dijk"
        ),
        Vec::<String>::new()
    );
    assert_eq!(ids(&m, "de rivier"), Vec::<String>::new());
    assert_eq!(matched(&m, "rivier bij de dijk"), ["rivier NEAR/5 dijk*"]);
}

#[test]
fn the_negation_filter_never_turns_away_a_listed_word() {
    let long = "a".repeat(70);
    let listed: Vec<String> = ["geen", "niet", "nooit", "maar", "ل", "ніколи", &long]
        .iter()
        .map(|w| w.to_string())
        .collect();
    let filter = WordFilter::new(listed.iter());
    for word in &listed {
        assert!(filter.may_have(word), "{word}");
    }
    assert!(
        filter.may_have(&"a".repeat(90)),
        "every long word shares one bit"
    );
    // Other lengths, and other first letters, are turned away.
    for word in ["klacht", "xeen", "zo", "brand"] {
        assert!(!filter.may_have(word), "{word}");
    }
    // With the default rulebook's negators and enders, most words of its examples are turned
    // away, and none of the listed ones.
    let source = crate::RulebookSource::embedded();
    let lexicon: toml::Value = toml::from_str(&source.lexicon.text).expect("lexicon.toml parses");
    let listed: Vec<String> = ["negators", "enders"]
        .iter()
        .flat_map(|list| {
            lexicon["negation"][list]
                .as_array()
                .expect("a list of words")
                .iter()
                .map(|w| w.as_str().expect("a word").to_owned())
        })
        .collect();
    let filter = WordFilter::new(listed.iter());
    let (mut words, mut passed) = (0, 0);
    for example in source
        .examples
        .iter()
        .flat_map(|file| crate::examples::parse_examples(file).expect("the examples parse"))
    {
        for word in crate::normalize::normalize(&example.text).split(' ') {
            let listed_word = listed.iter().any(|l| l == word);
            assert!(!listed_word || filter.may_have(word), "{word}");
            words += 1;
            passed += usize::from(filter.may_have(word) && !listed_word);
        }
    }
    assert!(passed * 5 < words, "{passed} of {words} words passed");
}

#[test]
fn negation_cancels_a_keyword_until_a_scope_ender() {
    let settings = MatcherSettings {
        negation: Negation {
            negators: ["geen", "not"].map(String::from).into_iter().collect(),
            enders: ["maar", "but"].map(String::from).into_iter().collect(),
            reach: 3,
        },
        ..MatcherSettings::default()
    };
    let m = build_with(
        vec![
            with(
                ALL,
                topic("complaint", Category::Complaint, &["klacht", "complaint"]),
            ),
            topic("fire", Category::Crisis, &["brand"]),
        ],
        settings,
    );
    let (found, negated) = m.find_explained(&normalize("Dit is geen klacht, hoor"));
    assert!(found.is_empty());
    assert_eq!(negated, ["`klacht` after `geen`"]);
    assert_eq!(ids(&m, "geen vraag maar een klacht"), ["complaint"]);
    assert_eq!(ids(&m, "not really a complaint"), Vec::<String>::new());
    assert_eq!(
        ids(&m, "geen vraag, wel een klacht"),
        ["complaint"],
        "out of reach"
    );
    assert_eq!(
        ids(&m, "geen idee of het brand is"),
        ["fire"],
        "negation is off for fire"
    );
}
