"""A product is an entity: one canonical name, found from any of its codes, INNs, brands
and spellings; read from every intervention, arm, title and outcome of a record; a code
the vocabulary does not know yet is still a name; an unnamed product is called what it is
("unnamed CD19 CAR-T, <lead sponsor>"), never a sentence of the record."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from monitor.core.classify import Classifier
from monitor.core.filters import StudyFilter
from monitor.core.normalize import to_study
from monitor.core.products import Catalogue, compact, matches, slugify, unnamed_name
from monitor.core.vocabulary import Vocabulary

DOMAIN = Path(__file__).parent / "data" / "domain"


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier()


@pytest.fixture(scope="module")
def records() -> dict[str, dict[str, Any]]:
    out = {}
    for line in (DOMAIN / "records.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        out[r["protocolSection"]["identificationModule"]["nctId"]] = r
    return out


def _record(
    nct: str,
    title: str,
    interventions: list[dict[str, Any]],
    *,
    sponsor: str = "Shanghai Qihan Biotechnology Co., Ltd.",
    conditions: tuple[str, ...] = ("Systemic Lupus Erythematosus",),
    summary: str = "",
    outcomes: tuple[str, ...] = (),
    arms: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """A registry record in the API's shape, as investigator-initiated CAR-T trials in
    China write them (the shapes below are taken from real registrations)."""
    return {
        "protocolSection": {
            "identificationModule": {"nctId": nct, "briefTitle": title},
            "statusModule": {"overallStatus": "RECRUITING"},
            "sponsorCollaboratorsModule": {"leadSponsor": {"name": sponsor, "class": "INDUSTRY"}},
            "descriptionModule": {"briefSummary": summary},
            "conditionsModule": {"conditions": list(conditions)},
            "designModule": {"studyType": "INTERVENTIONAL", "phases": ["PHASE1"]},
            "armsInterventionsModule": {"interventions": interventions, "armGroups": list(arms)},
            "outcomesModule": {"primaryOutcomes": [{"measure": m} for m in outcomes]},
        },
        "hasResults": False,
    }


# -- the catalogue ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed,canonical",
    [
        ("CABA-201", "CABA-201 (rese-cel)"),
        ("caba201", "CABA-201 (rese-cel)"),
        ("rese-cel", "CABA-201 (rese-cel)"),
        ("resecabtagene autoleucel", "CABA-201 (rese-cel)"),
        ("CT103A", "CT103A (eque-cel)"),
        ("eque-cel", "CT103A (eque-cel)"),
        ("Equecabtagene Autoleucel", "CT103A (eque-cel)"),
        ("Fucaso", "CT103A (eque-cel)"),
        ("KYV 101", "KYV-101"),
        ("azd0120", "GC012F / AZD0120"),
        ("Tecvayli", "teclistamab"),
    ],
)
def test_every_name_of_a_product_resolves_to_its_one_canonical_name(typed: str, canonical: str) -> None:
    cat = Catalogue.of(Vocabulary.load())
    entry = cat.resolve(typed)
    assert entry is not None and entry.name == canonical
    assert cat.canonical([typed, canonical]) == (canonical,)


def test_a_code_the_catalogue_does_not_know_is_kept_as_typed() -> None:
    cat = Catalogue.of(Vocabulary.load())
    assert cat.resolve("PRG-2311") is None
    assert cat.canonical(["PRG-2311"]) == ("PRG-2311",)


def test_a_known_product_carries_its_developer_and_names() -> None:
    entry = Catalogue.of(Vocabulary.load()).resolve("rese-cel")
    assert entry is not None
    assert entry.developer == "Cabaletta Bio"
    assert entry.modality == "CAR-T" and entry.targets == ("CD19",)
    assert {"CABA-201", "resecabtagene autoleucel"} <= set(entry.names())
    assert entry.slug == "caba-201"


def test_slugs_are_url_words() -> None:
    assert slugify("CABA-201 (rese-cel)") == "caba-201"
    assert slugify("GC012F / AZD0120") == "gc012f-azd0120"
    assert slugify("unnamed CD19 CAR-T, Ribeirão Preto Blood Center") == (
        "unnamed-cd19-car-t-ribeirao-preto-blood-center"
    )


def test_a_product_filter_compares_whole_names_as_letters_and_digits() -> None:
    assert matches(["caba 201"], ["CABA-201 (rese-cel)"])
    assert matches(["RESE-CEL"], ["CABA-201 (rese-cel)"])
    assert matches(["AZD0120"], ["GC012F / AZD0120"])
    assert not matches(["KYV-1010"], ["KYV-101"])
    assert not matches(["KYV-10"], ["KYV-101"])  # a shorter code is another product too
    assert compact("Sjögren KYV-101") == "sjogrenkyv101"


def test_unnamed_products_say_what_they_are() -> None:
    assert unnamed_name("CAR-T", ["CD19"], "autologous", "Ribeirão Preto Blood Center") == (
        "unnamed CD19 CAR-T, Ribeirão Preto Blood Center"
    )
    assert unnamed_name("CAR-T", ["CD19/BCMA"], "allogeneic", "Zhejiang University") == (
        "unnamed allogeneic CD19/BCMA CAR-T, Zhejiang University"
    )
    assert unnamed_name("bispecific", ["CD19xCD3"], None, None) == "unnamed CD19xCD3 T-cell engager"


# -- the classifier names products ---------------------------------------------------------


def test_no_product_is_ever_a_sentence_of_the_record(clf: Classifier, records: dict[str, Any]) -> None:
    """Over every real record: a product is a known name, a code (one word), or unnamed."""
    known = set(clf.vocabulary.products)
    for nct, raw in records.items():
        study = to_study(raw)
        c = clf.classify(study)
        texts = {iv.name for iv in study.interventions} | {a.label for a in study.arms}
        for name in c.products:
            inn = re.fullmatch(r"[A-Za-z]+(?:cabtagene [a-z]+leucel|tamab|tamig)", name, re.I)
            assert name in known or " " not in name or inn or name.startswith("unnamed "), (nct, name)
            assert name not in texts or name in known or " " not in name or inn, (nct, name)
        if c.modality:
            assert c.products and c.product == c.products[0], nct


def test_arm_labels_and_intervention_sentences_become_unnamed_products(
    clf: Classifier, records: dict[str, Any]
) -> None:
    """Real records whose only intervention is an arm's words ("UCAR T-cell group", "All
    patients will receive CD19 CAR-T cell therapy on the basis of ...")."""
    worded = []
    for raw in records.values():
        study = to_study(raw)
        names = [iv.name for iv in study.interventions]
        if any(n.endswith(" group") or n.startswith("All patients") for n in names):
            worded.append(study)
    assert len(worded) >= 3
    for study in worded:
        c = clf.classify(study)
        assert c.product is not None and c.product.startswith("unnamed "), c.product
        assert c.product.endswith(", " + (study.lead_sponsor or "")), c.product
        assert "CAR-T" in c.product


def test_a_code_named_in_the_title_and_interventions_is_the_product(clf: Classifier) -> None:
    raw = _record(
        "NCT09000001",
        "PRG-2311 in Patients With Refractory Systemic Lupus Erythematosus",
        [{"type": "BIOLOGICAL", "name": "PRG-2311"}],
        sponsor="Prologue Biotech",
        summary="A single-arm study of autologous CD19/BCMA CAR-T cells (PRG-2311) in refractory SLE.",
    )
    c = clf.classify(to_study(raw))
    assert c.in_scope and c.modality == "CAR-T"
    assert c.products == ("PRG-2311",)
    assert any(e.label == "product" and e.value == "PRG-2311" for e in c.evidence)


def test_a_code_given_as_a_cell_injection_is_the_product(clf: Classifier) -> None:
    raw = _record(
        "NCT09000002",
        "Universal CAR-T Cells in Refractory Autoimmune Diseases",
        [{"type": "BIOLOGICAL", "name": "QT-019B Cell Injection"}],
        summary="Allogeneic universal CAR-T cells targeting CD19 and BCMA.",
        conditions=("Systemic Lupus Erythematosus", "Systemic Sclerosis"),
    )
    c = clf.classify(to_study(raw))
    assert c.in_scope
    assert c.products == ("QT-019B",)


def test_a_known_product_named_only_outside_the_interventions_is_found(clf: Classifier) -> None:
    """As Kyverna's registrations do: the interventions describe, the outcomes and the
    description name the product."""
    raw = _record(
        "NCT09000003",
        "A Study of Autologous CD19 CAR T Cells in Stiff Person Syndrome",
        [{"type": "BIOLOGICAL", "name": "Anti-CD19 CAR T-cell therapy"}],
        sponsor="Kyverna Therapeutics",
        conditions=("Stiff Person Syndrome",),
        outcomes=("Incidence of adverse events after KYV-101 infusion",),
    )
    c = clf.classify(to_study(raw))
    assert c.products == ("KYV-101",)
    assert c.in_scope


def test_two_products_are_both_listed_the_primary_first(clf: Classifier, records: dict[str, Any]) -> None:
    """A CAAR-T study with a CAR-T sub-study (the labelled set notes such a record)."""
    found = []
    for raw in records.values():
        c = clf.classify(to_study(raw))
        if len(c.products) > 1:
            found.append(c)
    assert found, "some real record gives two products"
    for c in found:
        assert c.product == c.products[0]
        primary = clf.vocabulary.products.get(c.products[0])
        if primary is not None:
            assert primary.modality == c.modality


def test_a_generic_word_with_digits_is_no_code(clf: Classifier) -> None:
    raw = _record(
        "NCT09000004",
        "CD19-CAR-T Cells for Type 1 Diabetes and IgG4-related Disease, Phase 1",
        [{"type": "BIOLOGICAL", "name": "CD19-CAR-T cells D0 infusion"}],
        sponsor="Example University Hospital",
        conditions=("Type 1 Diabetes", "IgG4 Related Disease"),
        outcomes=("SLEDAI-2K change from baseline", "EQ-5D at week 12"),
    )
    c = clf.classify(to_study(raw))
    assert c.product == "unnamed CD19 CAR-T, Example University Hospital"


# -- the filter everywhere -----------------------------------------------------------------


class _Row:
    def __init__(self, products: tuple[str, ...]) -> None:
        self.nct_id = "NCT09000009"
        self.in_scope = True
        self.modality = "CAR-T"
        self.targets = ("CD19",)
        self.indications = ("SLE",)
        self.overall_status = "RECRUITING"
        self.lead_sponsor = "Cabaletta Bio"
        self.countries = ("United States",)
        self.phases = ("PHASE1",)
        self.products = products


@pytest.mark.parametrize("typed", ["rese-cel", "CABA201", "resecabtagene autoleucel", "CABA 201"])
def test_a_readers_filter_finds_the_product_by_any_name(typed: str) -> None:
    vocab = Vocabulary.load()
    flt = StudyFilter(products=(typed,)).resolved(
        modalities=["CAR-T"],
        targets=vocab.target_order,
        indications=vocab.indication_order,
        catalogue=Catalogue.of(vocab),
    )
    assert flt.products == ("CABA-201 (rese-cel)",)
    assert flt.matches(_Row(("DSG3-CAART", "CABA-201 (rese-cel)")))
    assert not flt.matches(_Row(("KYV-101",)))
    assert "product CABA-201 (rese-cel)" in flt.describe()


def test_the_record_is_not_altered(clf: Classifier, records: dict[str, Any]) -> None:
    raw = next(iter(records.values()))
    before = copy.deepcopy(raw)
    clf.classify(to_study(raw))
    assert raw == before


# -- indications named, not lumped ---------------------------------------------------------


@pytest.mark.parametrize(
    "condition,group",
    [
        ("Graves Disease", "Graves' disease"),
        ("Graves' Disease", "Graves' disease"),
        ("Refractory Membranous Nephropathy", "membranous nephropathy"),
        ("Stiff-Person Syndrome", "stiff-person syndrome"),
        ("Autoimmune Encephalitis", "autoimmune encephalitis"),
        ("Chronic Inflammatory Demyelinating Polyradiculoneuropathy", "CIDP"),
        ("Myelin Oligodendrocyte Glycoprotein Antibody-Associated Disease (MOGAD)", "MOGAD"),
        ("IgA Nephropathy (IgAN)", "IgA nephropathy"),
        ("Antiphospholipid Syndrome", "antiphospholipid syndrome"),
        ("Acquired Thrombotic Thrombocytopenic Purpura", "TTP"),
        ("Behcet Disease", "Behçet's disease"),
        ("Relapsed/Refractory Autoimmune Diseases", "autoimmune (basket)"),
        ("Lambert-Eaton Myasthenic Syndrome", "other autoimmune"),
    ],
)
def test_every_condition_the_watch_meets_has_its_group(clf: Classifier, condition: str, group: str) -> None:
    raw = _record(
        "NCT09000010",
        "CD19 CAR-T Cells in Refractory Disease",
        [{"type": "BIOLOGICAL", "name": "CD19 CAR-T cells"}],
        conditions=(condition,),
    )
    c = clf.classify(to_study(raw))
    assert c.in_scope and c.indications == (group,), c.indications
    if group == "other autoimmune":  # "other" says what it holds
        assert any(e.label == "indications" and condition in e.text for e in c.evidence)


def test_a_basket_beside_named_diseases_is_no_group_of_its_own(clf: Classifier) -> None:
    raw = _record(
        "NCT09000011",
        "CD19 CAR-T Cells in Refractory Autoimmune Diseases",
        [{"type": "BIOLOGICAL", "name": "CD19 CAR-T cells"}],
        conditions=("Autoimmune Diseases", "Systemic Lupus Erythematosus", "Graves Disease"),
    )
    assert clf.classify(to_study(raw)).indications == ("SLE", "Graves' disease")


def test_a_review_note_quotes_the_records_casing(clf: Classifier) -> None:
    raw = _record(
        "NCT09000012",
        "BCMA CAR-T Cells in Autoimmune Neurological Diseases",
        [{"type": "BIOLOGICAL", "name": "BCMA CAR-T cells"}],
        conditions=("Myasthenia Gravis", "Neuromyelitis Optica Spectrum Disorder", "POEMS Syndrome"),
    )
    c = clf.classify(to_study(raw))
    assert c.review == ("treats an oncology indication (POEMS) beside autoimmune disease",)


def test_a_coded_comparator_drug_is_not_the_cell_therapys_name(clf: Classifier) -> None:
    raw = _record(
        "NCT09000013",
        "CD19 CAR-T Cells Versus Standard Therapy in Refractory Lupus Nephritis",
        [
            {"type": "BIOLOGICAL", "name": "Anti-CD19 CAR-T cells"},
            {"type": "DRUG", "name": "VX-117"},  # a coded standard-of-care drug in the other arm
        ],
        sponsor="Example University Hospital",
        conditions=("Lupus Nephritis",),
    )
    c = clf.classify(to_study(raw))
    assert c.products == ("unnamed CD19 CAR-T, Example University Hospital",)
