"""Word-by-word differences between two texts, for the web's version comparison. Pure.

The result is a list of (op, text) pieces, op one of "same", "del", "ins"; the template
escapes each piece and marks deletions and insertions with <del>/<ins> (and words, not
colour alone, in their titles), so a changed sentence in a long eligibility text or
summary shows exactly which words changed.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

_TOKEN = re.compile(r"\s+|[^\s]+")


def pieces(before: str, after: str) -> list[tuple[str, str]]:
    """The pieces that turn `before` into `after`, words and the spaces between kept."""
    a, b = _TOKEN.findall(before), _TOKEN.findall(after)
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            _add(out, "same", "".join(a[i1:i2]))
            continue
        if op in ("delete", "replace"):
            _add(out, "del", "".join(a[i1:i2]))
        if op in ("insert", "replace"):
            _add(out, "ins", "".join(b[j1:j2]))
    return out


def _add(out: list[tuple[str, str]], op: str, text: str) -> None:
    if not text:
        return
    if out and out[-1][0] == op:
        out[-1] = (op, out[-1][1] + text)
    else:
        out.append((op, text))
