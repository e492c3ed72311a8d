#!/bin/sh
# Writes N messages (default 100 000) as JSON Lines for `webcare ingest`: 60 days of traffic
# from 2026-09-01 over 20 000 conversations, twelve texts a municipal desk gets (questions,
# reports, complaints, thanks, noise). Used by the replay benchmark in BENCHMARKS.md.
N=${1:-100000}
awk -v n="$N" 'BEGIN {
  split("Wat zijn de openingstijden van het stadskantoor?|Hoe vraag ik een nieuw paspoort aan?|Wanneer wordt het grofvuil opgehaald in mijn wijk?|Hoe vraag ik een parkeervergunning aan?|De lantaarnpaal in onze straat is al een week kapot|I lost my passport, how do I get a new one?|Ik heb een klacht over de afvalinzameling, al drie keer niet opgehaald|Bedankt voor de snelle hulp met mijn melding!|Wat kost een uittreksel uit de basisregistratie?|qwerty asdf zxcv|Er ligt al dagen zwerfvuil bij het speeltuintje|Ik wil bezwaar maken tegen mijn WOZ-beschikking", t, "|");
  for (i = 0; i < n; i++) {
    s = int(i * 5184000 / n); d = 1 + int(s / 86400); r = s % 86400;
    printf "{\"id\":\"m%d\",\"channel\":\"http\",\"conversation\":\"c%d\",\"author\":\"a%d\",\"text\":\"%s\",\"received_at\":\"2026-%02d-%02dT%02d:%02d:%02dZ\"}\n",
      i, i % 20000, i % 20000, t[1 + (i * 7919) % 12], (d <= 30 ? 9 : 10), (d <= 30 ? d : d - 30), int(r / 3600), int(r % 3600 / 60), r % 60
  }
}'
