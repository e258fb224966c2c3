"""The local Essie subset: literal, token-based matching of the query syntax the watch queries use."""

from __future__ import annotations

import pytest

from monitor.core import essie

TEXTS = {
    "interventionsearch": ["CD19 CAR-T cells", "Cyclophosphamide"],
    "conditionsearch": ["Systemic Lupus Erythematosus", "Lupus Nephritis"],
    "lastupdatepostdate": ["2026-05-29"],
    "phase": ["PHASE1", "PHASE2"],
    "enrollmentcount": ["40"],
}


def m(expr: str, area: str = "BasicSearch") -> bool:
    return essie.matches(essie.parse(expr), lambda a: TEXTS.get(a.lower(), []), area)


@pytest.mark.parametrize(
    "expr,area,expected",
    [
        ('"CAR T"', "InterventionSearch", True),  # hyphen and space are the same to Essie
        ("CAR-T", "InterventionSearch", True),
        ('"chimeric antigen receptor"', "InterventionSearch", False),
        ("lupus AND nephritis", "ConditionSearch", True),
        ("lupus nephritis", "ConditionSearch", True),  # implicit AND
        ("lupus AND myasthenia", "ConditionSearch", False),
        ("myasthenia OR lupus", "ConditionSearch", True),
        ("lupus NOT nephritis", "ConditionSearch", False),
        ("(myasthenia OR sclerosis) OR AREA[InterventionSearch]CAR", "ConditionSearch", True),
        ("AREA[LastUpdatePostDate]RANGE[2026-01-01,MAX]", "BasicSearch", True),
        ("AREA[LastUpdatePostDate]RANGE[2026-06-01,MAX]", "BasicSearch", False),
        ("AREA[EnrollmentCount]RANGE[0,99]", "BasicSearch", True),
        ("AREA[Phase]PHASE2", "BasicSearch", True),
        ("AREA[Acronym]MISSING", "BasicSearch", True),
        ("EXPANSION[None]lupus", "ConditionSearch", True),
        ("ALL", "BasicSearch", True),
        ("car", "ConditionSearch", False),  # whole tokens only: "car" is not in "carcinoma"
    ],
)
def test_matching(expr: str, area: str, expected: bool) -> None:
    assert m(expr, area) is expected


def test_whole_tokens_only() -> None:
    assert essie.matches(essie.parse("CD7"), lambda a: ["CD70 CAR-T"], "x") is False


@pytest.mark.parametrize("bad", ["(lupus", "lupus)", "RANGE[1]", ""])
def test_syntax_errors(bad: str) -> None:
    with pytest.raises(essie.EssieSyntaxError):
        essie.parse(bad)
