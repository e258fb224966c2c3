"""T-cell engagers recognised by what they do, whatever the wording: registrations written
from public descriptions of real engager programmes (tests/data/domain/engagers.*), each
with the label a careful reader gives it. Engagers described only in words are in scope
with their target arm (an arm no vocabulary lists is still a target, and said to be new);
oncology trials of the same products, bispecifics that engage no T cell, anti-CD3
monoclonals, unengineered NK cells, healthy-volunteer and allergy studies stay out, each
with its reason. The held-out part (engagers_heldout.*) is scored by bench/classify.py,
not here: these rules were not written against it."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from monitor.core.classify import Classifier
from monitor.core.engagers import antigens, read
from monitor.core.normalize import to_study
from monitor.registry.localdata import load_records

DOMAIN = Path(__file__).parent / "data" / "domain"
CLF = Classifier()


def _cases() -> list[tuple[dict[str, Any], dict[str, str]]]:
    labels = {r["nct_id"]: r for r in csv.DictReader((DOMAIN / "engagers.csv").open(encoding="utf-8"))}
    out = []
    for raw in load_records(DOMAIN / "engagers.jsonl"):
        out.append((raw, labels[raw["protocolSection"]["identificationModule"]["nctId"]]))
    return out


CASES = _cases()


def _known(word: str) -> str | None:
    return next((v for k, v, _ in CLF.vocabulary.find(word) if k == "target"), None)


@pytest.mark.parametrize(
    "raw,label",
    [c for c in CASES if c[1]["in_scope"] == "yes"],
    ids=lambda c: c["nct_id"] if isinstance(c, dict) and "nct_id" in c else "",
)
def test_an_engager_in_autoimmune_disease_is_in_scope_with_its_target(
    raw: dict[str, Any], label: dict[str, str]
) -> None:
    c = CLF.classify(to_study(raw))
    assert c.in_scope, c.scope_reason
    assert c.modality == label["modality"]
    assert label["target"] in c.targets, c.targets
    assert not c.needs_review, c.review  # the classifier does it, not a curator


@pytest.mark.parametrize(
    "raw,label",
    [c for c in CASES if c[1]["in_scope"] == "no"],
    ids=lambda c: c["nct_id"] if isinstance(c, dict) and "nct_id" in c else "",
)
def test_what_is_no_engager_in_autoimmune_disease_stays_out_with_its_reason(
    raw: dict[str, Any], label: dict[str, str]
) -> None:
    c = CLF.classify(to_study(raw))
    assert not c.in_scope
    reason = label["reason"]
    if reason == "oncology":
        assert c.scope_reason.startswith("oncology") and c.modality == "bispecific"
    elif reason in ("healthy volunteers", "allergy"):
        assert c.scope_reason.startswith(("not an autoimmune indication", "no CAR", "no autoimmune"))
    elif reason == "not an autoimmune indication":
        assert c.scope_reason.startswith(("oncology", "not an autoimmune", "no autoimmune"))
    else:  # engages no T cell, an anti-CD3 monoclonal, unengineered NK cells
        assert c.modality is None and c.scope_reason.startswith("no CAR"), (c.modality, c.scope_reason)


def test_a_target_arm_no_vocabulary_lists_is_a_new_target() -> None:
    raw = next(r for r, lab in CASES if lab["target"] == "FcRH5xCD3")
    c = CLF.classify(to_study(raw))
    assert c.targets == ("FcRH5xCD3",) and c.new_targets == ("FcRH5",)
    assert any(e.label == "new target" and e.value == "FcRH5" for e in c.evidence)
    assert c.to_dict()["new_targets"] == ["FcRH5"]


@pytest.mark.parametrize(
    "text,antigens_said",
    [
        ("a bispecific antibody that binds BCMA and CD3, directing the patient's own T cells", ["BCMA"]),
        (
            "A CD19/CD20 T-cell engager in participants with B-cell driven autoimmune disease",
            ["CD19", "CD20"],
        ),
        ("a bispecific antibody that targets FcRH5 and CD3", ["FcRH5"]),
        ("Recombinant CD19xCD3 double antibody (A-319) injection", ["CD19"]),
        ("an IgM CD38×CD3 T cell engager", ["CD38"]),
        ("redirects the patient's own T cells to kill CD19-expressing B cells", ["CD19"]),
        ("a trispecific antibody binding CD19, CD3 and CD28", ["CD19"]),
    ],
)
def test_an_engager_is_read_by_what_it_does(text: str, antigens_said: list[str]) -> None:
    reading = read(text, _known)
    assert reading is not None
    assert list(reading.antigens) == antigens_said


@pytest.mark.parametrize(
    "text",
    [
        "Teplizumab is an anti-CD3 monoclonal antibody that delays type 1 diabetes.",
        "A bispecific antibody that neutralises IL-13 and IL-4.",
        "Obexelimab binds CD19 and FcγRIIb and inhibits B cells without depleting them.",
        "Bispecific CD19/CD20 CAR-T cells are infused after lymphodepletion.",
        "Regulatory T cells were measured at week 12.",
        "CD3+ T cell counts are recorded at every visit.",
    ],
)
def test_what_engages_no_t_cell_is_not_read_as_an_engager(text: str) -> None:
    assert read(text, _known) is None


def test_antigens_skip_formats_units_and_the_t_cell_side() -> None:
    said = antigens(
        "An IgG1 bispecific (DART) binding CD20 and CD3ε, dosed Q2W, with CD28 co-stimulation", _known
    )
    assert said == ["CD20"]
