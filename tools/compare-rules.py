#!/usr/bin/env python3
"""Every decision that differs between two rulebooks, over every labelled message we have.

Before a rule change lands, its author reads each decision it changes, not only the totals:
a keyword that catches one missed emergency may also send twenty parking questions to the
crisis team. This decides every message of `rules/eval/*.jsonl` and `rules/examples/*.jsonl`
(and any further JSON Lines files named) with both rulebooks through `webcare replay`, and
prints each message whose action, team, priority or template differs, with its label.
A `!` marks a message labelled critical (crisis, distress, abuse, legal, press).

    tools/compare-rules.py OLD_RULES_DIR NEW_RULES_DIR [MORE.jsonl ...]

`WEBCARE` names the binary (default `target/release/webcare`). Messages are decided as web chat
messages on Monday 2026-11-23 10:00, when every team is open, as `webcare eval` does.
"""

import glob
import json
import os
import subprocess
import sys
import tempfile

CRITICAL = {"crisis", "distress", "abuse", "legal", "press"}


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__.strip().split("\n\n")[2], file=sys.stderr)
        return 2
    old, new, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    binary = os.environ.get("WEBCARE", os.path.join(root, "target/release/webcare"))
    files = sorted(glob.glob(os.path.join(root, "rules/eval/*.jsonl")))
    files += sorted(glob.glob(os.path.join(root, "rules/examples/*.jsonl"))) + extra
    labelled = []
    for path in files:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                labelled.append((os.path.basename(path), number, json.loads(line)))
    with tempfile.TemporaryDirectory() as scratch:
        messages = os.path.join(scratch, "messages.jsonl")
        with open(messages, "w", encoding="utf-8") as out:
            for _, _, example in labelled:
                out.write(json.dumps({"text": example["text"], "channel": "webchat"}) + "\n")
        before = decide(binary, old, messages, os.path.join(scratch, "old"))
        after = decide(binary, new, messages, os.path.join(scratch, "new"))
    if not (len(before) == len(after) == len(labelled)):
        print("a rulebook could not decide every message; run `webcare check` on both", file=sys.stderr)
        return 1
    changed = 0
    for (name, number, example), a, b in zip(labelled, before, after):
        if outcome(a) != outcome(b):
            changed += 1
            mark = "!" if example["category"] in CRITICAL else " "
            label = f"{example['category']}/{example.get('topic')}"
            print(f"{mark} {name}:{number} [{label}] {outcome(a)} -> {outcome(b)}")
            print(f"     {example['text'][:300]!r}")
    print(f"{changed} of {len(labelled)} decisions differ")
    return 0


def decide(binary: str, rules: str, messages: str, data: str) -> list:
    """Every decision of `rules` on `messages`, one dict each, in order."""
    run = subprocess.run(
        [binary, "--rules", rules, "--data", data, "replay", "--input", messages, "--at", "2026-11-23 10:00"],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
    return [json.loads(line) for line in run.stdout.splitlines()]


def outcome(decision: dict) -> tuple:
    return (decision["action"], decision.get("team"), decision.get("priority"), decision.get("template"))


if __name__ == "__main__":
    sys.exit(main())
