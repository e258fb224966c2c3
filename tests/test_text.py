"""Cleaning registry text: markup goes, and nothing else does.

The registry's Markdown escapes comparisons (`\\<18`), old records carry them bare
(`<30 mL/min`), and history versions are HTML (`&lt;`, `<p>`). A cleaner that takes
"anything between < and >" for a tag reverses what a criterion or a reason for stopping
says; these tests hold it to the registry's words.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.normalize import clean_text, to_study
from monitor.core.text import clean
from tests.conftest import load_json, record


@pytest.mark.parametrize(
    ("raw", "reads"),
    [
        # the registry's Markdown escapes, as the data API sends them
        ("Aged \\<18 Years and Adults \\>65 Years", "Aged <18 Years and Adults >65 Years"),
        ("Patients needing \\>10 mg of daily prednisone", "Patients needing >10 mg of daily prednisone"),
        # bare comparisons in older records
        ("eGFR <30 mL/min or proteinuria >3.5 g/day", "eGFR <30 mL/min or proteinuria >3.5 g/day"),
        (
            "Paused for patients aged <18 years; enrolment of adults >=18 years continues",
            "Paused for patients aged <18 years; enrolment of adults >=18 years continues",
        ),
        ("age<18 or score < 5 or a<b", "age<18 or score < 5 or a<b"),
        ("SLEDAI-2K <4 and >=2 flares", "SLEDAI-2K <4 and >=2 flares"),
        ("ratio </3 and >2, <!5 or <? 6 >", "ratio </3 and >2, <!5 or <? 6 >"),
        ("a cohort <lupus and ra> of 12", "a cohort <lupus and ra> of 12"),  # not an HTML element
        (
            "<b and c> stays: attributes without values are prose",
            "<b and c> stays: attributes without values are prose",
        ),
        # history versions: HTML with entities
        ("a SpO2 &lt;&#x2F;= 94% or tachypnea", "a SpO2 </= 94% or tachypnea"),
        ("<p>Lupus</p><p>Nephritis</p>", "Lupus Nephritis"),
        ("<ul><li>CD19</li><li>BCMA</li></ul>", "CD19 BCMA"),
        ('see <a href="https://example.org/x?a=1&amp;b=2">the protocol</a>.', "see the protocol."),
        ("<b>CD19</b>&amp;BCMA", "CD19&BCMA"),
        ("10<sup>9</sup>/L", "10^9^/L"),  # as the registry's Markdown writes a superscript
        # both at once: a real tag and an escaped comparison
        ("<p>eGFR &lt;30 and <b>age</b> \\>65</p>", "eGFR <30 and age >65"),
        ("\\<p\\> is written, not markup", "<p> is written, not markup"),
        ("&lt;p&gt; is written too", "<p> is written too"),
        # references decoded only when complete; a decoded escape is undone once
        ("R&D and Q&A, AT&T &para", "R&D and Q&A, AT&T &para"),
        ("&#92;[CAR-T&#92;]", "[CAR-T]"),
        ("&amp;lt; stays an entity's text", "&lt; stays an entity's text"),
        ("C:\\data\\new and 50\\% \\*", "C:\\data\\new and 50% *"),
    ],
)
def test_only_markup_is_removed(raw: str, reads: str) -> None:
    assert clean_text(raw) == reads
    assert clean(raw) == reads  # long texts skip the cache; the same rules


def test_real_records_keep_their_comparisons() -> None:
    # From real /studies records: an escaped '<' in the summary, an escaped '>' too.
    st = to_study(record("NCT07441291"))
    assert st.brief_summary and "(aged 3-<80 years, ECOG 0-2" in st.brief_summary
    st = to_study(record("NCT06481735"))
    assert st.brief_summary and "(purified CAR-positive T cells > 90%)" in st.brief_summary


def test_a_history_version_in_html_reads_like_the_markdown_record() -> None:
    version = load_json("history_NCT04280705_v0.trajnovd.json")["study"]
    summary = to_study(version).brief_summary
    assert summary and "<p>" not in summary and "&lt;" not in summary
    assert "a SpO2 </= 94%" in summary


# Prose as registry criteria are written: words, numbers and comparisons, escaped or bare,
# with and without spaces; and the markup history versions carry. No word is an HTML
# element name, so prose alone can never form a tag, whatever it sits next to.
_PROSE = st.sampled_from(
    [
        "Aged",
        "eGFR",
        "years",
        "mL/min",
        "dose",
        "CD19",
        "18",
        "3.5",
        "65%",
        "<",
        ">",
        "<=",
        ">=",
        "</",
        "<!",
        "\\<",
        "\\>",
        "=",
        "-",
        " ",
        "  ",
        "\n",
        ";",
        "(",
        ")",
        "/",
    ]
)
_BLOCK_TAGS = st.sampled_from(["<p>", "</p>", "<br/>", "<br />", "<li>", "</li>", '<p class="x">'])
_INLINE_TAGS = st.sampled_from(["<b>", "</b>", "<i>", "</i>", "<span>", "</span>"])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_PROSE, _PROSE, _PROSE, _BLOCK_TAGS, _INLINE_TAGS), max_size=40))
def test_cleaning_never_removes_a_character_that_is_not_part_of_a_tag(parts: list[str]) -> None:
    """Strip the tags we put in, undo the escapes: what is left is exactly what the cleaner gives."""
    text = "".join(parts)
    expected = []
    for part in parts:
        if part.startswith("<") and part.endswith(">") and len(part) > 2:
            expected.append("" if part.strip("</>").split()[0] in {"b", "i", "span"} else " ")
        else:
            expected.append(part.replace("\\<", "<").replace("\\>", ">"))
    assert (clean(text) or "") == " ".join("".join(expected).split())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120).filter(lambda t: "<" not in t and "&" not in t and "\\" not in t))
def test_text_without_markup_only_has_its_spacing_folded(text: str) -> None:
    assert (clean(text) or "") == " ".join(text.split())


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="&"), max_size=120))
def test_a_less_than_that_opens_no_tag_is_never_removed(text: str) -> None:
    """Any ASCII text: if no '<' is followed by a letter, '/' or '!' (so nothing can be a
    tag or a comment), only escapes' backslashes and spacing may go."""
    if re.search(r"<[A-Za-z/!]", text):
        return
    unescaped = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)
    assert (clean(text) or "") == " ".join(unescaped.split())
