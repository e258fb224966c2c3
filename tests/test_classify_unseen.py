"""The classifier on kinds of study it has no vocabulary for: recall first, by design.

Every record here is written for the test from the patterns registry records follow and
the products in the labelled list; no rule names a study. The indication that decides
scope is the one treated, not the population it is treated in.
"""

from __future__ import annotations

import pytest

from tests.test_classify import c_of, record

CAR_T = [{"type": "BIOLOGICAL", "name": "Anti-CD19 CAR-T cells"}]


@pytest.mark.parametrize(
    ("title", "conditions"),
    [
        (
            "CD19 CAR-T Cells for Relapsed B-cell Lymphoma in Patients With Systemic Lupus Erythematosus",
            ["Diffuse Large B-cell Lymphoma", "Systemic Lupus Erythematosus"],
        ),
        (
            "Anti-CD19 CAR T Therapy of Mantle Cell Lymphoma in Participants Who Have Rheumatoid Arthritis",
            ["Mantle Cell Lymphoma", "Rheumatoid Arthritis"],
        ),
        (
            "BCMA CAR-T for Multiple Myeloma in Patients With Concomitant Myasthenia Gravis",
            ["Multiple Myeloma", "Myasthenia Gravis"],
        ),
    ],
)
def test_a_cancer_treated_in_patients_with_an_autoimmune_disease_is_oncology(
    title: str, conditions: list[str]
) -> None:
    c = c_of(record(title, CAR_T, conditions))
    assert not c.in_scope
    assert c.scope_reason.startswith("oncology indication")
    assert "in patients with" in c.scope_reason or "treated" in c.scope_reason


@pytest.mark.parametrize(
    ("title", "conditions"),
    [
        (
            "CD19 CAR-T Cells for Refractory Systemic Lupus Erythematosus in Patients Who Had Lymphoma",
            ["Systemic Lupus Erythematosus", "History of Lymphoma"],
        ),
        (
            "CAR-T Therapy of Myasthenia Gravis in Patients With a History of Breast Cancer",
            ["Myasthenia Gravis"],
        ),
    ],
)
def test_an_autoimmune_disease_treated_in_patients_who_had_cancer_stays_in_scope(
    title: str, conditions: list[str]
) -> None:
    c = c_of(record(title, CAR_T, conditions))
    assert c.in_scope, c.scope_reason
    assert not any("oncology" in r for r in c.review)  # the cancer is the population, not the target


def test_a_basket_treating_both_stays_in_scope_and_is_flagged() -> None:
    c = c_of(
        record(
            "CD19 CAR-T Cells in B-cell Lymphoma and in Systemic Lupus Erythematosus",
            CAR_T,
            ["B-cell Lymphoma", "Systemic Lupus Erythematosus"],
        )
    )
    assert c.in_scope and any("oncology" in r for r in c.review)
