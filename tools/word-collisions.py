#!/usr/bin/env python3
"""Real words that the rulebook's keywords catch by accident.

Typos, stems and compounds let a keyword match what people really type, and now and then a
real word of another meaning: "vergissing" (a mistake) as a typo of "vermissing" (a lost
passport), "geweld" (violence) with the stem of "geweldig", "mannetjes" holding "netjes".
This decides every word of a word list as a message, through `webcare replay`, and prints each
word that a keyword matched through a variant, with the kind (≈ typo, ~ stem, ⊃ inside a longer
word), the keyword and the topic, most common keyword first. Read the list: a real word of
another meaning goes into `lexicon.toml` (`[typos] real_words`, `[compounds] endings`) or makes
its keyword exact (`=word`); a spelling or an inflection of the keyword itself is what the
variants are for.

    tools/word-collisions.py RULES_DIR WORDLIST...

Word lists are one word per line, e.g. Debian's (`apt-get download wdutch wbritish wngerman
wfrench wspanish wportuguese witalian wpolish`, then `dpkg-deb -x` and `/usr/share/dict/dutch`,
`british-english`, `ngerman`, …; the Polish list has 4.3 million forms and takes about two
minutes). Words under five letters are
skipped: no variant applies to them. `WEBCARE` names the binary (default
`target/release/webcare`).
"""

import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import unicodedata

VARIANT = re.compile(r"([^\s,]+) (≈|~|⊃) ([^,(]+?)(?=,|$| \()")


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__.strip().split("\n\n")[2], file=sys.stderr)
        return 2
    rules, lists = sys.argv[1], sys.argv[2:]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    binary = os.environ.get("WEBCARE", os.path.join(root, "target/release/webcare"))
    words = sorted({w for path in lists for w in read_words(path)})
    with tempfile.TemporaryDirectory() as scratch:
        messages = os.path.join(scratch, "words.jsonl")
        with open(messages, "w", encoding="utf-8") as out:
            for word in words:
                out.write(json.dumps({"text": word, "channel": "webchat"}) + "\n")
        run = subprocess.run(
            [binary, "--rules", rules, "--data", os.path.join(scratch, "data"), "replay", "--input", messages],
            capture_output=True,
            text=True,
        )
    by_keyword = collections.defaultdict(list)
    for line in run.stdout.splitlines():
        for reason in json.loads(line)["reasons"]:
            found = re.match(r"recognised `([^`]+)`", reason)
            if found:
                for word, kind, keyword in VARIANT.findall(reason):
                    by_keyword[(keyword, kind, found.group(1))].append(word)
    for (keyword, kind, topic), hits in sorted(by_keyword.items(), key=lambda kv: -len(kv[1])):
        print(f"{kind} {keyword} ({topic}, {len(hits)}): {' '.join(sorted(set(hits)))}")
    print(f"{len(words)} words decided", file=sys.stderr)
    return 0


def read_words(path: str):
    """The list's words as the matcher sees them: lowercase, no accents, letters only."""
    with open(path, encoding="utf-8", errors="ignore") as lines:
        for line in lines:
            word = unicodedata.normalize("NFKD", line.strip().lower())
            word = "".join(c for c in word if not unicodedata.combining(c))
            if len(word) >= 5 and word.isalpha() and word.isascii():
                yield word


if __name__ == "__main__":
    sys.exit(main())
