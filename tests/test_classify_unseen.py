"""The classifier on kinds of study it has no vocabulary for: recall first, by design.

Every record here is written for the test from the patterns registry records follow and
the products in the labelled list; no rule names a study. The indication that decides
scope is the one treated, not the population it is treated in.
"""

from __future__ import annotations

import pytest

from tests.harness import c_of, record

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


# -- products no vocabulary knows: in scope, low confidence, in the review queue ---------


@pytest.mark.parametrize(
    ("title", "interventions", "summary", "conditions", "product"),
    [
        (  # a code with CAR in it, given as "<code> T cells"
            "A Study of ABCAR-001 T Cells in Refractory Systemic Lupus Erythematosus",
            [{"type": "BIOLOGICAL", "name": "ABCAR-001 T cells"}],
            "An open-label dose-escalation study in adults with refractory SLE.",
            ["Systemic Lupus Erythematosus"],
            "ABCAR-001",
        ),
        (  # a code with CAR in it, given as "<code> injection"
            "XYCAR-Q7 Injection in Generalized Myasthenia Gravis",
            [{"type": "DRUG", "name": "XYCAR-Q7 injection"}],
            "Safety and tolerability of XYCAR-Q7 in AChR-antibody positive gMG.",
            ["Myasthenia Gravis, Generalized"],
            "XYCAR-Q7",
        ),
        (  # an allogeneic product given only as code plus "T cells"
            "Allogeneic QZ-2207 T Cells in Diffuse Cutaneous Systemic Sclerosis",
            [{"type": "BIOLOGICAL", "name": "QZ-2207 allogeneic T cells"}],
            "A phase 1 study of QZ-2207 in adults with diffuse cutaneous SSc.",
            ["Systemic Sclerosis, Diffuse"],
            "QZ-2207",
        ),
    ],
    ids=[
        "code-with-car-T-cells",
        "code-with-car-injection",
        "allogeneic-code-T-cells",
    ],
)
def test_an_unknown_engineered_product_in_an_autoimmune_study_is_never_silently_out(
    title: str, interventions: list[dict[str, str]], summary: str, conditions: list[str], product: str
) -> None:
    c = c_of(record(title, interventions, conditions, summary=summary))
    assert c.in_scope, c.scope_reason
    assert c.needs_review and c.modality is not None
    assert c.confidence.get("modality") == "low"
    assert any(product in e.text for e in c.evidence if e.label == "modality")
    assert any("review" in r or "confirm" in r or "summary" in r for r in c.review)


@pytest.mark.parametrize(
    ("title", "interventions", "conditions"),
    [
        ("CARE-2 Nurse-Led Care in Lupus", [{"type": "BEHAVIORAL", "name": "CARE-2 program"}], ["Lupus"]),
        (
            "Regulatory T Cells (Polyclonal) in Type 1 Diabetes",
            [{"type": "BIOLOGICAL", "name": "Polyclonal Tregs"}],
            ["Type 1 Diabetes"],
        ),
        ("Rituximab in Myasthenia Gravis", [{"type": "DRUG", "name": "Rituximab"}], ["Myasthenia Gravis"]),
        (
            "CARDIO-7 Cardiac Screening in Systemic Sclerosis",
            [{"type": "OTHER", "name": "CARDIO-7 echo"}],
            ["Systemic Sclerosis"],
        ),
    ],
)
def test_near_misses_stay_out(title: str, interventions: list[dict[str, str]], conditions: list[str]) -> None:
    c = c_of(record(title, interventions, conditions))
    assert not c.in_scope


def test_an_unknown_car_code_in_an_oncology_trial_stays_out() -> None:
    c = c_of(
        record(
            "ABCAR-001 T Cells in Relapsed Diffuse Large B-cell Lymphoma",
            [{"type": "BIOLOGICAL", "name": "ABCAR-001 T cells"}],
            ["Diffuse Large B-cell Lymphoma"],
        )
    )
    assert not c.in_scope


# -- targets shown one way ------------------------------------------------------------


def test_targets_read_the_same_in_every_output() -> None:
    """README: `CD19/BCMA` is one dual-target product, `; ` parts alternatives. A CAAR-T
    study labelled with two separate targets reads the same in the landscape, the
    digest, the report and the feed."""
    from monitor.core.describe import targets_label
    from monitor.core.digest import StudyView, study_labels
    from monitor.publishing import feed, report
    from monitor.store.models import StudyRow

    row = StudyRow(
        nct_id="NCT09900002",
        brief_title="DSG3-CAART and CD19 CAR-T in Pemphigus Vulgaris",
        overall_status="RECRUITING",
        phases=("PHASE1",),
        lead_sponsor="Example Bio",
        modality="CAAR-T",
        targets=("DSG3", "CD19/BCMA"),
        indications=("pemphigus",),
        cell_source="autologous",
        in_scope=True,
        first_post_date="2026-01-05",
        countries=("United States",),
    )
    want = "DSG3; CD19/BCMA"
    assert targets_label(row.targets) == want == targets_label(["DSG3", "CD19/BCMA"])
    assert want in study_labels(StudyView.of(row))
    assert report._study(row, "https://example.org/NCT09900002").targets == want
    assert want in feed._study_line(row)
    assert targets_label(None, "undisclosed") == "undisclosed"


# -- engagers: each labelled product, in autoimmune disease and in oncology -------------


def _engagers() -> list[dict[str, str]]:
    import csv

    from tests.conftest import DATA

    with (DATA / "domain" / "products.csv").open(encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["modality"].startswith("bispecific")]


def engager_record(product: dict[str, str], *, oncology: bool) -> dict:  # type: ignore[type-arg]
    """As registries write them: the product by name with its target in the description."""
    disease = (
        (
            "Relapsed or Refractory Multiple Myeloma"
            if "BCMA" in product["target"]
            else "Relapsed B-cell Non-Hodgkin Lymphoma"
        )
        if oncology
        else "Systemic Lupus Erythematosus"
    )
    return record(
        f"A Phase 1 Study of {product['product']} in {disease}",
        [
            {
                "type": "DRUG",
                "name": product["product"],
                "description": (
                    f"{product['product']} ({product['aliases']}), "
                    f"a {product['target']} T-cell engaging antibody"
                ),
            }
        ],
        [disease],
    )


@pytest.mark.parametrize("product", _engagers(), ids=lambda p: p["product"])
def test_each_labelled_engager_in_an_autoimmune_study_is_in_scope_with_its_target(
    product: dict[str, str],
) -> None:
    c = c_of(engager_record(product, oncology=False))
    assert c.in_scope and c.modality == "bispecific", (c.scope_reason, c.modality)
    assert c.cell_source is None
    antigens = set(product["target"].replace("x", " ").split())
    assert antigens <= set(c.target_label.replace("x", " ").replace("/", " ").replace(";", " ").split())


@pytest.mark.parametrize("product", _engagers(), ids=lambda p: p["product"])
def test_each_labelled_engager_in_oncology_is_out_as_oncology(product: dict[str, str]) -> None:
    c = c_of(engager_record(product, oncology=True))
    assert not c.in_scope and c.scope_reason.startswith("oncology")
    assert c.modality == "bispecific"


def test_a_name_on_the_car_t_stem_is_a_car_t_without_review() -> None:
    """USAN/INN name CAR T gene therapies with the stem -cabtagene: a new one is a CAR T."""
    c = c_of(
        record(
            "Zelocabtagene Autoleucel in Refractory Lupus Nephritis",
            [{"type": "BIOLOGICAL", "name": "Zelocabtagene autoleucel"}],
            ["Lupus Nephritis"],
        )
    )
    assert c.in_scope and c.modality == "CAR-T" and not c.needs_review
    assert c.confidence["modality"] == "medium"


def test_a_car_named_only_in_the_detailed_description_is_found() -> None:
    raw = record(
        "HN-7702 Injection in Refractory Generalized Myasthenia Gravis",
        [{"type": "BIOLOGICAL", "name": "HN-7702 Injection"}],
        ["Myasthenia Gravis, Generalized"],
        summary="An open-label, single-arm study of HN-7702 in adults with refractory gMG.",
    )
    assert not c_of(raw).in_scope  # nothing in the record says what HN-7702 is
    raw["protocolSection"]["descriptionModule"]["detailedDescription"] = (
        "HN-7702 is an autologous BCMA-directed chimeric antigen receptor (CAR) T-cell product. "
        "Participants receive lymphodepletion with fludarabine and cyclophosphamide before infusion."
    )
    c = c_of(raw)
    # the description says what the coded intervention is: the classifier settles it, the
    # review queue is not asked to
    assert c.in_scope and c.modality == "CAR-T" and c.confidence["modality"] == "medium"
    assert not c.needs_review
    assert any(e.text == "HN-7702: the summary says what it is" for e in c.evidence)
    assert c.products == ("HN-7702",)


def test_a_summary_naming_the_coded_intervention_settles_it_without_a_curator() -> None:
    raw = record(
        "LV-3301 in Refractory Idiopathic Inflammatory Myopathy",
        [{"type": "DRUG", "name": "LV-3301"}],
        ["Idiopathic Inflammatory Myopathies"],
        summary="LV-3301 is a lipid nanoparticle that programs T cells in the body (in vivo CAR-T) "
        "against CD19.",
    )
    c = c_of(raw)
    assert c.in_scope and c.modality == "CAR-T" and not c.needs_review
    assert c.cell_source == "in vivo" and c.products == ("LV-3301",)


def test_a_summary_mentioning_a_car_t_beside_another_drug_is_still_for_review() -> None:
    """A CAR word in the summary that does not say what the coded intervention is (prior
    therapy, a comparison) proves nothing: low confidence, and a curator looks."""
    raw = record(
        "ZX-115 Tablets in Refractory Systemic Lupus Erythematosus",
        [{"type": "DRUG", "name": "ZX-115"}],
        ["Systemic Lupus Erythematosus"],
        summary="ZX-115 is an oral BTK inhibitor. Patients who received CAR-T cell therapy before may enrol.",
    )
    c = c_of(raw)
    assert not c.in_scope or c.needs_review


def _cell_products() -> list[dict[str, str]]:
    import csv

    from tests.conftest import DATA

    with (DATA / "domain" / "products.csv").open(encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if not r["modality"].startswith("bispecific")]


@pytest.mark.parametrize("product", _cell_products(), ids=lambda p: p["product"])
def test_each_labelled_cell_product_treating_a_cancer_in_autoimmune_patients_stays_out(
    product: dict[str, str],
) -> None:
    """The oncology pool of bench/classify.py, one shape of it as a test: the product named
    by its code, the cancer treated, the autoimmune disease only the population."""
    cancer = (
        "Relapsed or Refractory Multiple Myeloma" if "BCMA" in product["target"] else "Follicular Lymphoma"
    )
    c = c_of(
        record(
            f"{product['product']} for {cancer} in Patients With Pre-existing Autoimmune Disease",
            [{"type": "BIOLOGICAL", "name": product["product"]}],
            [cancer, "Autoimmune Diseases"],
        )
    )
    assert not c.in_scope, c.scope_reason
