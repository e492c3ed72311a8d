#!/bin/sh
# Writes N messages (default 100 000) as JSON Lines for `webcare ingest`: 60 days of traffic
# from 2026-09-01, twelve texts a municipal desk gets (questions, reports, complaints, thanks,
# noise). Used by the replay and ingest benchmarks in BENCHMARKS.md.
#
# The second argument says how the messages fall into conversations:
# - `desk` (default): 20 000 conversations in turn, each as long as N makes it;
# - `short`: conversations of three messages (a new one every three, most of a commit's
#   conversations new), with ids scattered as platform ids are: what a desk's history looks
#   like, and what a store's conversation table meets.
N=${1:-100000}
SHAPE=${2:-desk}
case $SHAPE in desk|short) ;; *) echo "usage: $0 [N] [desk|short]" >&2; exit 2 ;; esac
awk -v n="$N" -v shape="$SHAPE" 'BEGIN {
  split("Wat zijn de openingstijden van het stadskantoor?|Hoe vraag ik een nieuw paspoort aan?|Wanneer wordt het grofvuil opgehaald in mijn wijk?|Hoe vraag ik een parkeervergunning aan?|De lantaarnpaal in onze straat is al een week kapot|I lost my passport, how do I get a new one?|Ik heb een klacht over de afvalinzameling, al drie keer niet opgehaald|Bedankt voor de snelle hulp met mijn melding!|Wat kost een uittreksel uit de basisregistratie?|qwerty asdf zxcv|Er ligt al dagen zwerfvuil bij het speeltuintje|Ik wil bezwaar maken tegen mijn WOZ-beschikking", t, "|");
  for (i = 0; i < n; i++) {
    s = int(i * 5184000 / n); d = 1 + int(s / 86400); r = s % 86400;
    if (shape == "desk") {
      c = sprintf("c%d", i % 20000); a = sprintf("a%d", i % 20000)
    } else {
      # 300 conversations open at a time, each getting three messages 300 apart; the id is
      # the number scrambled by a multiplicative hash, so new ids land all over the key space.
      k = (i % 300) + 300 * int(i / 900); h = (k * 2654435761) % 4294967296;
      c = sprintf("%08x%d", h, k); a = sprintf("a%08x", h)
    }
    printf "{\"id\":\"m%d\",\"channel\":\"http\",\"conversation\":\"%s\",\"author\":\"%s\",\"text\":\"%s\",\"received_at\":\"2026-%02d-%02dT%02d:%02d:%02dZ\"}\n",
      i, c, a, t[1 + (i * 7919) % 12], (d <= 30 ? 9 : 10), (d <= 30 ? d : d - 30), int(r / 3600), int(r % 3600 / 60), r % 60
  }
}'
