"""A literal subset of the registry's Essie search syntax, evaluated against raw study records.

The local API server uses it so that the watch queries from config.toml select studies
the way the registry would. It is deliberately stricter than Essie: words match whole
tokens, with no synonym expansion or stemming. A study this evaluator finds, the
registry finds too; the reverse need not hold.

Supported: `AND`, `OR`, `NOT`, implicit AND, parentheses, "quoted phrases",
`AREA[Piece]expr`, `SEARCH[...]`, `EXPANSION[...]`, `COVERAGE[...]`, `TILT[...]` (the
last three accepted and ignored), `RANGE[min,max]` with `MIN`/`MAX`, `MISSING`, `ALL`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|"(?P<phrase>(?:[^"\\]|\\.)*)"|'
    r"(?P<op>AREA|SEARCH|EXPANSION|COVERAGE|TILT|RANGE)\[(?P<arg>[^\]]*)\]|(?P<word>[^\s()\"]+))"
)
_WORDS = re.compile(r"[0-9a-z]+")


class EssieSyntaxError(ValueError):
    pass


def tokens(text: str) -> list[str]:
    """The word tokens Essie matches on: lower case, accents folded ("Sjögren" is "sjogren"),
    split at anything not a letter or digit."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _WORDS.findall(text.casefold())


# -- AST ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Terms:
    words: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    low: str
    high: str


@dataclass(frozen=True)
class Missing:
    pass


@dataclass(frozen=True)
class All:
    pass


@dataclass(frozen=True)
class Not:
    child: Any


@dataclass(frozen=True)
class And:
    children: tuple[Any, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Any, ...]


@dataclass(frozen=True)
class Area:
    name: str
    child: Any


def alternatives(text: str) -> list[str]:
    """The top-level OR alternatives of an expression, as written (`a OR "b c" OR (d e)`
    gives `a`, `"b c"`, `(d e)`); one item when it is no OR list at top level."""
    parts: list[str] = []
    depth, quoted, start, i = 0, False, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in "([":
            depth += 1
        elif not quoted and ch in ")]":
            depth -= 1
        elif not quoted and depth == 0 and text.startswith(" OR ", i):
            parts.append(text[start:i].strip())
            start = i = i + 4
            continue
        i += 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def parse(text: str) -> Any:
    toks: list[tuple[str, str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise EssieSyntaxError(f"cannot parse search expression near {text[pos : pos + 20]!r}")
        pos = m.end()
        if m.group("lp"):
            toks.append(("(", "", ""))
        elif m.group("rp"):
            toks.append((")", "", ""))
        elif m.group("phrase") is not None:
            toks.append(("phrase", m.group("phrase").replace('\\"', '"'), ""))
        elif m.group("op"):
            toks.append(("op", m.group("op"), m.group("arg")))
        elif m.group("word"):
            toks.append(("word", m.group("word"), ""))
        if pos < len(text) and not text[pos:].strip():
            break
    parser = _Parser(toks)
    node = parser.expr()
    if parser.i != len(toks):
        raise EssieSyntaxError(f"unexpected {toks[parser.i][1] or toks[parser.i][0]!r} in search expression")
    return node


class _Parser:
    def __init__(self, toks: list[tuple[str, str, str]]) -> None:
        self.toks, self.i = toks, 0

    def peek(self) -> tuple[str, str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def expr(self) -> Any:
        parts = [self.and_expr()]
        while (t := self.peek()) and t[0] == "word" and t[1] == "OR":
            self.i += 1
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Any:
        parts = [self.unary()]
        while (t := self.peek()) and t[0] != ")" and not (t[0] == "word" and t[1] == "OR"):
            if t[0] == "word" and t[1] == "AND":
                self.i += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Any:
        t = self.peek()
        if t is None:
            raise EssieSyntaxError("search expression ends too early")
        if t[0] == "word" and t[1] == "NOT":
            self.i += 1
            return Not(self.unary())
        if t[0] == "op" and t[1] != "RANGE":
            self.i += 1
            child = self.unary()
            return Area(t[2].strip(), child) if t[1] == "AREA" else child
        return self.source()

    def source(self) -> Any:
        t = self.peek()
        assert t is not None
        self.i += 1
        if t[0] == "(":
            node = self.expr()
            if (closing := self.peek()) is None or closing[0] != ")":
                raise EssieSyntaxError("missing ')' in search expression")
            self.i += 1
            return node
        if t[0] == ")":
            raise EssieSyntaxError("unexpected ')' in search expression")
        if t[0] == "op":  # RANGE
            bounds = [b.strip() for b in t[2].split(",")]
            if len(bounds) != 2:
                raise EssieSyntaxError(f"RANGE needs two bounds: RANGE[{t[2]}]")
            return Range(bounds[0], bounds[1])
        if t[0] == "word" and t[1] == "MISSING":
            return Missing()
        if t[0] == "word" and t[1] == "ALL":
            return All()
        words = tuple(tokens(t[1]))
        return Terms(words)


# -- evaluation --------------------------------------------------------------------

Lookup = Callable[[str], list[str]]


def _in_range(value: str, low: str, high: str) -> bool:
    def num(s: str) -> float | None:
        try:
            return float(s)
        except ValueError:
            return None

    v = value.strip()
    if num(v) is not None and all(b in ("MIN", "MAX") or num(b) is not None for b in (low, high)):
        x = num(v)
        assert x is not None
        return (low == "MIN" or x >= float(low)) and (high == "MAX" or x <= float(high))
    padded = (v + "-01-01")[:10] if re.match(r"^\d{4}(-\d{2})?$", v) else v
    return (low == "MIN" or padded >= low) and (high == "MAX" or padded <= high)


def matches(node: Any, lookup: Lookup, area: str) -> bool:
    """Does the record behind `lookup(area) -> texts` satisfy `node`?"""
    if isinstance(node, Or):
        return any(matches(c, lookup, area) for c in node.children)
    if isinstance(node, And):
        return all(matches(c, lookup, area) for c in node.children)
    if isinstance(node, Not):
        return not matches(node.child, lookup, area)
    if isinstance(node, Area):
        return matches(node.child, lookup, node.name)
    if isinstance(node, All):
        return True
    if isinstance(node, Missing):
        return not lookup(area)
    if isinstance(node, Range):
        return any(_in_range(v, node.low, node.high) for v in lookup(area))
    if isinstance(node, Terms):
        if not node.words:
            return True
        needle = " " + " ".join(node.words) + " "
        return any(needle in " " + " ".join(tokens(t)) + " " for t in lookup(area))
    raise TypeError(f"not an Essie node: {node!r}")
