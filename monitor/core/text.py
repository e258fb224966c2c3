"""Registry text as a reader sees it, without losing a character of it. Pure.

The registry sends two kinds of text. The data API's records are Markdown: a literal
`<`, `>`, `[` or `*` is escaped (`Aged \\<18 Years`), and some old records still carry a
bare `<30 mL/min`. The history endpoints' versions are HTML: `<p>`, `<br/>`, `<ul><li>`,
and `&lt;` for a literal `<`. Cleaning both to the same reading keeps reformatting out of
the change log; cleaning must never eat a comparison, which reverses what a criterion or
a reason for stopping says.

So markup is recognised the way HTML's own tokenizer recognises it, and only when it is
markup: a tag is `<` or `</` immediately followed by the name of a real HTML element,
then attributes that each carry a value, then `>` (`<p>`, `<br/>`, `<a href="...">`);
a comment is `<!-- ... -->`. Anything else with a `<` in it (`<18`, `< 30`, `<=`, `a<b`,
`<lupus and ra>`, an escaped `\\<p>`) is text and stays. Character references are then
decoded only when complete (`&lt;`, `&#60;`, `&#x3C;`; `R&D` and `&para` stay as they
are), and Markdown escapes are undone last, so `&#92;[` (an escape written as an entity
in old HTML versions) reads `[`, as it does in the Markdown record.

The stdlib `html.parser` was tried and not used: it drops `</3 ...>` and `<!5 ...>` as
"bogus comments", takes `<? ...>` as a processing instruction and decodes `&para`
without its semicolon, each a way to lose text that was never markup.
"""

from __future__ import annotations

import functools
import re
from html.entities import html5

# Elements that a registry text has been seen to carry, or could: phrasing and block
# content, lists, tables, headings, the old presentational ones. Deliberately no
# single letters beyond HTML's own (a, b, i, p, q, s, u): `<x>` or `<n>` is prose.
_ELEMENTS = frozenset(
    (  # noqa: SIM905 (a word list reads better than 59 quoted names)
        "a abbr b bdi bdo big blockquote br caption center cite code col colgroup dd del dfn div dl dt em "
        "font h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s samp small span strike strong sub "
        "sup table tbody td tfoot th thead tr tt u ul var wbr"
    ).split()
)
# Inline elements vanish without a trace (`CD19</b>&` reads `CD19&`), except the two that
# carry meaning, written as the registry's Markdown writes them: `10<sup>9</sup>/L` reads
# `10^9^/L`, `CO<sub>2</sub>` reads `CO~2~`. The others end a block, so they leave a space
# between the words they part.
_INLINE = {
    name: ""
    for name in (  # noqa: SIM905
        "a abbr b bdi bdo big cite code del dfn em font i ins kbd mark q s samp small span strike strong "
        "tt u var wbr"
    ).split()
} | {"sup": "^", "sub": "~"}

# A tag by HTML's grammar: name, attributes each with a value (quoted or not), optional
# self-closing slash. Bounded, so a stray `<` never makes the search run long.
_ATTR = r"""\s+[A-Za-z_:][-A-Za-z0-9_:.]*\s*=\s*(?:"[^"<]{0,500}"|'[^'<]{0,500}'|[^\s"'=<>`]{1,200})"""
_MARKUP = re.compile(
    rf"<!--.{{0,2000}}?-->|<(/?)([A-Za-z][A-Za-z0-9]{{0,9}})((?:{_ATTR}){{0,20}})\s*/?>",
    re.DOTALL,
)
# A complete character reference; a Markdown escape (a backslash before ASCII punctuation).
_REFERENCE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def _strip_markup(text: str, block: str = " ") -> str:
    """Markup removed; an inline element leaves nothing (or ^/~), a block element `block`."""
    out: list[str] = []
    last = 0
    for m in _MARKUP.finditer(text):
        start = m.start()
        if _escaped(text, start):
            continue  # `\<p>` is the Markdown for a literal "<p>"
        name = m.group(2)
        if name is not None:
            name = name.lower()
            if name not in _ELEMENTS or (m.group(1) and m.group(3)):
                continue  # `<lupus>`, or an end tag with attributes: not markup
        out.append(text[last:start])
        out.append(_INLINE.get(name, block) if name else " ")
        last = m.end()
    if last == 0:
        return text
    out.append(text[last:])
    return "".join(out)


def _escaped(text: str, at: int) -> bool:
    """Whether the character at `at` is preceded by an odd run of backslashes."""
    n = 0
    while at - n - 1 >= 0 and text[at - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def _reference(m: re.Match[str]) -> str:
    ref = m.group(1)
    if ref[0] != "#":
        return html5.get(ref + ";", m.group(0))
    code = int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:])
    return chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else m.group(0)


def clean(text: str) -> str | None:
    """Markup removed, references decoded, escapes undone, spacing folded; None if nothing is left."""
    if "<" in text:
        text = _strip_markup(text)
    if "&" in text:
        text = _REFERENCE.sub(_reference, text)
    if "\\" in text:
        # After the references, so `&#92;[` (an escape written as an entity) reads `[`.
        text = _ESCAPE.sub(r"\1", text)
    # str.split and the regex \s agree on what whitespace is, in a third of a regex's time.
    return " ".join(text.split()) or None


def clean_lines(text: str) -> list[str]:
    """The text's lines as a reader sees them: like `clean`, but a line break, or an HTML
    block boundary (`<li>`, `<p>`, `<br/>`), ends a line. Empty lines are dropped.

    Eligibility criteria are lists: the data API writes them as Markdown lines, the history
    versions as `<ol><li>`; both read as the same lines here, so they can be compared
    criterion by criterion."""
    if "<" in text:
        text = _strip_markup(text, block="\n")
    if "&" in text:
        text = _REFERENCE.sub(_reference, text)
    if "\\" in text:
        text = _ESCAPE.sub(r"\1", text)
    return [line for raw in text.splitlines() if (line := " ".join(raw.split()))]


# Short texts (conditions, MeSH terms, countries, outcome time frames, ages) repeat across
# thousands of records; one bounded cache makes cleaning them nearly free, memory flat.
_SHORT = 160
_clean_short = functools.lru_cache(maxsize=8192)(clean)


def clean_cached(text: str) -> str | None:
    """`clean`, with short texts looked up in one bounded cache shared by every reader."""
    return _clean_short(text) if len(text) <= _SHORT else clean(text)
