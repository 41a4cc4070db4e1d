#!/usr/bin/env python3
"""Writes web/emoji/data.json, the emoji picker's data, from GitHub's gemoji.

Source: https://github.com/github/gemoji, file db/emoji.json (this data was made from
commit 5476a66d2794e0d1551b1f96e449afc72e9f7bec, 2023-03-29). Licence: MIT, Copyright (c)
2019 GitHub, Inc.; its text is in LICENSE-gemoji beside this script, which must travel with
the data.

To regenerate, from the repository's root:

    git clone --depth 1 https://github.com/github/gemoji /tmp/gemoji
    python3 web/emoji/generate.py /tmp/gemoji/db/emoji.json

The output keeps only what the picker needs, as arrays rather than objects:

    [[category, [[emoji, shortcodes, name, keywords(, 1 if it takes skin tones)], ...]], ...]

where shortcodes and keywords are space-separated (the first shortcode is the main one),
in gemoji's order, which is Unicode's.
"""

import json
import sys
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "data.json"


def entry(emoji):
    row = [emoji["emoji"], " ".join(emoji["aliases"]), emoji["description"], " ".join(emoji["tags"])]
    if emoji.get("skin_tones"):
        row.append(1)
    return row


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: generate.py PATH/TO/gemoji/db/emoji.json")
    source = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    categories = {}
    for emoji in source:
        categories.setdefault(emoji["category"], []).append(entry(emoji))
    data = [[name, rows] for name, rows in categories.items()]
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    OUTPUT.write_text(text + "\n", encoding="utf-8")
    print(f"{OUTPUT}: {sum(len(rows) for _, rows in data)} emoji, {len(text.encode())} bytes")


if __name__ == "__main__":
    main()
