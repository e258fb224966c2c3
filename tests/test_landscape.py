"""The landscape view, pure: a query round-trips through its URL, filters are "any of"
within a kind and "all" across kinds, empty values sort last either way, and a word
diff names exactly the words that changed."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest

from monitor.core.domain import UserError
from monitor.core.landscape import LandscapeQuery, view
from monitor.core.worddiff import pieces


def row(nct: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "nct_id": nct,
        "title": f"Study {nct}",
        "status": "RECRUITING",
        "phases": ["PHASE1"],
        "sponsor": "Kyverna Therapeutics",
        "countries": ["Germany"],
        "in_scope": True,
        "scope_reason": None,
        "modality": "CAR-T",
        "targets": ["CD19"],
        "cell_source": "autologous",
        "product": "KYV-101",
        "indications": ["SLE"],
        "needs_review": False,
        "last_update_post_date": "2026-11-01",
    }
    return {**base, **kw}


ROWS = [
    row("NCT00000001"),
    row("NCT00000002", modality="CAAR-T", targets=["DSG3"], indications=["pemphigus"], product=None),
    row("NCT00000003", targets=["CD19/BCMA"], cell_source="allogeneic", countries=["China", "Germany"]),
    row("NCT00000004", in_scope=False, scope_reason="oncology indication", modality="CAR-T"),
    row("NCT00000005", sponsor=None, last_update_post_date=None, status="COMPLETED", phases=["PHASE2"]),
]


def ids(params: dict[str, list[str]]) -> list[str]:
    return [r["nct_id"] for r in view(ROWS, LandscapeQuery.from_params(params)).rows]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["NCT00000001", "NCT00000002", "NCT00000003", "NCT00000005"]),  # newest first, empty last
        ({"all": ["1"]}, ["NCT00000001", "NCT00000002", "NCT00000003", "NCT00000004", "NCT00000005"]),
        ({"target": ["BCMA"]}, ["NCT00000003"]),  # one antigen of a dual-target product
        ({"modality": ["caar-t", "CAR-NK"]}, ["NCT00000002"]),  # any of, any case
        ({"modality": ["CAR-T"], "country": ["china"]}, ["NCT00000003"]),  # all kinds apply
        ({"source": ["allogeneic"]}, ["NCT00000003"]),
        ({"status": ["completed"], "phase": ["phase2"]}, ["NCT00000005"]),
        ({"q": ["nct00000002"]}, ["NCT00000002"]),
        ({"q": ["kyverna kyv-101"]}, ["NCT00000001", "NCT00000003"]),  # every word, anywhere
        (
            {"sort": ["sponsor"], "order": ["desc"]},
            ["NCT00000001", "NCT00000002", "NCT00000003", "NCT00000005"],
        ),
        ({"sort": ["product"]}, ["NCT00000001", "NCT00000003", "NCT00000005", "NCT00000002"]),
    ],
)
def test_the_view_a_query_asks_for(params: dict[str, list[str]], expected: list[str]) -> None:
    assert ids(params) == expected


def test_a_query_round_trips_through_its_url() -> None:
    q = LandscapeQuery.from_params(
        {"modality": ["CAR-T"], "target": ["CD19", "BCMA"], "q": ["lupus"], "sort": ["nct"], "page": ["3"]}
    )
    again = LandscapeQuery.from_params(parse_qs(urlencode(q.to_params())))
    assert again == q
    assert LandscapeQuery().to_params() == []  # defaults leave the URL clean


def test_counts_cover_every_match_and_pages_split_them() -> None:
    v = view(ROWS, LandscapeQuery.from_params({"per_page": ["2"], "page": ["2"]}))
    assert v.total == 4 and v.pages == 2 and len(v.rows) == 2
    assert dict(v.by_modality) == {"CAR-T": 3, "CAAR-T": 1}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": ["activ"]}, "status: unknown value 'activ'"),
        ({"phase": ["9"]}, "phase: unknown value '9'"),
        ({"source": ["donor"]}, "source: unknown value 'donor'"),
        ({"sort": ["colour"]}, "sort: unknown column 'colour'"),
        ({"order": ["up"]}, "order: 'up' is neither asc nor desc"),
        ({"per_page": ["5000"]}, "per_page: 5000 is not between 1 and 500"),
        ({"colour": ["red"]}, "unknown parameter 'colour'"),
    ],
)
def test_bad_values_are_one_line_errors(params: dict[str, list[str]], message: str) -> None:
    with pytest.raises(UserError, match=message):
        LandscapeQuery.from_params(params)


def test_a_word_diff_names_the_changed_words_and_keeps_the_rest() -> None:
    before = "Adults aged 18 to 65 years with refractory lupus nephritis"
    after = "Adults aged 12 to 65 years with refractory lupus nephritis"
    got = pieces(before, after)
    assert got == [
        ("same", "Adults aged "),
        ("del", "18"),
        ("ins", "12"),
        ("same", " to 65 years with refractory lupus nephritis"),
    ]
    assert "".join(t for op, t in got if op != "ins") == before
    assert "".join(t for op, t in got if op != "del") == after


def _compact_slowly(value: str) -> str:
    import unicodedata

    text = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in text.casefold() if ch.isalnum() and not unicodedata.combining(ch))


@pytest.mark.parametrize(
    "text",
    ["CABA-201 (rese-cel)", "KYV_101", "anti-CD19 CAR T", "GC012F / AZD0120", "  ", "", "x" * 3, "a\tb\nc"],
)
def test_a_products_letters_and_digits_read_fast_are_those_read_slowly(text: str) -> None:
    from monitor.core.products import compact

    assert compact(text) == _compact_slowly(text)
    assert compact(text + " Ribeirão") == _compact_slowly(text + " Ribeirão")  # the slow path
