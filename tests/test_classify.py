"""The classifier against the domain experts' labelled set, and the traps they warn about.

Labels come from tests/data/domain/labelled.csv (checked by hand against each record).
Records are thin rebuilds of registry exports; the classifier reads what they say and
nothing else (no label is keyed on an NCT id).
"""

from __future__ import annotations

import copy
import csv
import re
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Settings, load_settings
from monitor.core import essie
from monitor.core.classify import Classifier
from monitor.core.domain import UserError
from monitor.core.normalize import to_study
from monitor.core.vocabulary import Vocabulary, load_overrides, tokens
from monitor.registry.localdata import _pieces
from tests.conftest import DATA, domain_records
from tests.harness import c_of, record

LABELS = {r["nct_id"]: r for r in csv.DictReader((DATA / "domain" / "labelled.csv").open(encoding="utf-8"))}
RECORDS = {r["protocolSection"]["identificationModule"]["nctId"]: r for r in domain_records()}
CLASSIFIER = Classifier()

# Where the label records a judgement the thin record cannot support, we say so here.
TARGET_JUDGEMENT_CALLS = {
    # The record's only CAR-T intervention is anti-CD19; the label adds biomarker-assigned BCMA arms.
    "NCT07523542": "label says 'CD19 or BCMA (biomarker-assigned arms)'; the record names only CD19",
}


def classify(nct: str):  # type: ignore[no-untyped-def]
    return CLASSIFIER.classify(to_study(RECORDS[nct]))


def antigens(label: str) -> set[str]:
    """'CD19/BCMA', 'CD19xCD3', 'DSG3 (CAAR); CD19 sub-study arm' -> {'CD19', 'BCMA', ...}."""
    text = re.sub(r"\([^)]*\)", " ", label)
    found = set(re.findall(r"CD\d+|BCMA|BAFF-R|DSG3|MuSK|HLA-A2|citrullinated proteins", text))
    return found - {"CD3"}


LABELLED_WITH_RECORD = sorted(n for n in LABELS if n in RECORDS)


@pytest.mark.parametrize("nct", LABELLED_WITH_RECORD)
def test_scope_matches_the_label(nct: str) -> None:
    c = classify(nct)
    expected = LABELS[nct]["in_scope"] == "yes"
    assert c.in_scope is expected, f"{nct}: {c.scope_reason}; label reason: {LABELS[nct]['reason']}"


IN_SCOPE = [n for n in LABELLED_WITH_RECORD if LABELS[n]["in_scope"] == "yes"]


@pytest.mark.parametrize("nct", IN_SCOPE)
def test_modality_matches_the_label(nct: str) -> None:
    assert classify(nct).modality == LABELS[nct]["modality"]


@pytest.mark.parametrize("nct", [n for n in IN_SCOPE if n not in TARGET_JUDGEMENT_CALLS])
def test_target_antigens_match_the_label(nct: str) -> None:
    c = classify(nct)
    expected = antigens(LABELS[nct]["target"])
    got = set().union(*(antigens(t) for t in c.targets)) if c.targets else set()
    assert got == expected, f"{nct}: got {c.targets}, label {LABELS[nct]['target']!r}"


@pytest.mark.parametrize("nct", IN_SCOPE)
def test_cell_source_is_right_whenever_the_record_states_it(nct: str) -> None:
    label = LABELS[nct]["autologous_or_allogeneic"]
    c = classify(nct)
    if c.cell_source is not None and label in ("autologous", "allogeneic", "in vivo"):
        assert c.cell_source == label


def test_cell_source_is_stated_for_most_in_scope_studies() -> None:
    stated = [n for n in IN_SCOPE if classify(n).cell_source is not None]
    assert len(stated) / len(IN_SCOPE) > 0.7


@pytest.mark.parametrize("nct", LABELLED_WITH_RECORD)
def test_every_label_has_evidence(nct: str) -> None:
    c = classify(nct)
    if c.modality:
        assert any(e.label == "modality" and e.value == c.modality for e in c.evidence)
    for group in c.indications:
        assert any(e.label == "indications" and e.value == group for e in c.evidence)


# -- specific behaviour on records built for the purpose --------------------------------


def test_obexelimab_is_not_a_t_cell_engager() -> None:
    c = c_of(
        record(
            "Obexelimab in IgG4-Related Disease",
            [
                {
                    "type": "DRUG",
                    "name": "Obexelimab",
                    "otherNames": ["XmAb5871"],
                    "description": "a bifunctional CD19 x FcgammaRIIb antibody",
                }
            ],
            ["IgG4-Related Disease"],
            summary="bispecific antibody binding CD19 and FcgammaRIIb",
        )
    )
    assert c.modality is None and c.in_scope is False


def test_bispecific_car_t_is_a_cell_therapy_not_an_antibody() -> None:
    c = c_of(
        record(
            "A Bispecific CD19/CD20 CAR T in Lupus Nephritis",
            [{"type": "BIOLOGICAL", "name": "bispecific CD19/CD20 CAR T cells"}],
            ["Lupus Nephritis"],
        )
    )
    assert c.modality == "CAR-T" and c.targets == ("CD19/CD20",) and c.in_scope


def test_t_cell_engager_needs_cd3_and_gets_an_engager_target() -> None:
    c = c_of(
        record(
            "CD19xCD3 T cell engager in refractory SLE",
            [{"type": "DRUG", "name": "XYZ-123", "description": "a CD19 x CD3 bispecific T-cell engager"}],
            ["Systemic Lupus Erythematosus"],
        )
    )
    assert c.modality == "bispecific" and c.targets == ("CD19xCD3",) and c.cell_source is None


def test_engager_in_myeloma_is_out_of_scope_as_oncology() -> None:
    c = c_of(
        record(
            "Teclistamab in Relapsed Multiple Myeloma",
            [{"type": "DRUG", "name": "teclistamab"}],
            ["Multiple Myeloma"],
        )
    )
    assert c.modality == "bispecific" and not c.in_scope and c.scope_reason == "oncology indication"


def test_car_t_mentioned_only_in_the_summary_of_an_oncology_trial_stays_out() -> None:
    c = c_of(
        record(
            "Tocilizumab for Cytokine Release",
            [{"type": "DRUG", "name": "tocilizumab"}],
            ["Lymphoma"],
            summary="Patients treated with CAR-T cells who develop CRS.",
        )
    )
    assert not c.in_scope


def test_car_treg_in_transplantation_is_not_autoimmune() -> None:
    c = c_of(
        record(
            "HLA-A2 CAR-Treg in Kidney Transplantation",
            [{"type": "BIOLOGICAL", "name": "TX200-TR101"}],
            ["Kidney Transplantation"],
        )
    )
    assert c.modality == "CAR-Treg" and not c.in_scope and "not an autoimmune" in c.scope_reason


def test_polyclonal_tregs_without_a_car_are_out() -> None:
    c = c_of(
        record(
            "Expanded Polyclonal Tregs in Type 1 Diabetes",
            [{"type": "BIOLOGICAL", "name": "autologous polyclonal Tregs"}],
            ["Type 1 Diabetes"],
        )
    )
    assert c.modality is None and not c.in_scope


def test_statistical_cart_is_not_a_car() -> None:
    c = c_of(
        record(
            "CART Models to Predict Flares in Lupus",
            [{"type": "OTHER", "name": "CART classification model"}],
            ["Lupus"],
        )
    )
    assert c.modality is None


def test_basket_with_oncology_and_autoimmune_arms_is_in_scope_and_flagged() -> None:
    c = c_of(
        record(
            "relma-cel in Large B-cell Lymphoma and Systemic Lupus Erythematosus",
            [{"type": "BIOLOGICAL", "name": "JWCAR201"}],
            ["Large B-cell Lymphoma", "Lupus"],
        )
    )
    assert c.in_scope and c.needs_review
    assert any("oncology" in r for r in c.review)


def test_observational_follow_up_is_out() -> None:
    c = c_of(
        record(
            "Long-term follow-up after CD19 CAR-T in lupus",
            [{"type": "OTHER", "name": "CD19 CAR-T cells"}],
            ["Lupus"],
            study_type="OBSERVATIONAL",
        )
    )
    assert not c.in_scope and c.scope_reason == "observational study"


def test_spelling_variants_and_accents() -> None:
    c = c_of(
        record(
            "CD19-targetd Car-t in Myasthaenia Gravis and Sjögren's",
            [{"type": "BIOLOGICAL", "name": "CD19 Car-t"}],
            ["Myasthaenia Gravis", "Sjögren's Syndrome"],
        )
    )
    assert c.modality == "CAR-T" and c.targets == ("CD19",)
    assert set(c.indications) == {"myasthenia gravis", "Sjögren's"}


def test_caar_t_target_is_the_autoantigen() -> None:
    c = c_of(
        record(
            "MuSK-CAART for MuSK Myasthenia Gravis",
            [{"type": "BIOLOGICAL", "name": "MuSK-CAART"}],
            ["Myasthenia Gravis, MuSK"],
        )
    )
    assert (c.modality, c.targets, c.cell_source) == ("CAAR-T", ("MuSK",), "autologous")


def test_mrna_and_in_vivo_platforms() -> None:
    c = c_of(
        record(
            "Descartes-08 in Myasthenia Gravis",
            [{"type": "BIOLOGICAL", "name": "Descartes-08"}],
            ["Myasthenia Gravis"],
        )
    )
    assert c.platform == "mRNA" and c.cell_source == "autologous" and c.targets == ("BCMA",)
    c = c_of(record("An in vivo CAR-T in SLE", [{"type": "GENETIC", "name": "CD19 CAR-mRNA LNP"}], ["SLE"]))
    assert c.cell_source == "in vivo" and c.platform == "mRNA"


def test_in_vivo_expansion_of_ordinary_car_t_is_not_in_vivo_car() -> None:
    c = c_of(
        record(
            "CD19 CAR-T in SLE",
            [{"type": "BIOLOGICAL", "name": "autologous CD19 CAR-T cells"}],
            ["SLE"],
            summary="We will measure in vivo expansion of CAR-T cells.",
        )
    )
    assert c.cell_source == "autologous"


def test_contradictory_cell_source_goes_to_review() -> None:
    c = c_of(
        record(
            "CD19 CAR-T in SLE",
            [
                {"type": "BIOLOGICAL", "name": "autologous CD19 CAR-T cells"},
                {"type": "BIOLOGICAL", "name": "allogeneic CD19 CAR-T cells"},
            ],
            ["SLE"],
        )
    )
    assert c.needs_review and any("cell source" in r for r in c.review)


def test_full_registry_record_without_car_is_out() -> None:
    from tests.conftest import record as registry_record

    c = CLASSIFIER.classify(to_study(registry_record("NCT02552212")))  # certolizumab in axial SpA
    assert c.modality is None and not c.in_scope


def test_round_trip_of_the_stored_form() -> None:
    from monitor.core.classify import Classification

    c = classify("NCT04422912")
    assert Classification.from_dict(c.to_dict()) == c


# -- vocabulary and overrides --------------------------------------------------------------


def test_vocabulary_is_data_a_new_product_code_needs_no_code(tmp_path: Path) -> None:
    raw = record("ZZ-999 in Lupus", [{"type": "BIOLOGICAL", "name": "ZZ-999"}], ["Lupus"])
    assert c_of(raw).modality is None
    text = (Path(__file__).parent.parent / "monitor" / "data" / "vocabulary.toml").read_text()
    text += '\n[[product]]\nname = "ZZ-999"\naliases = []\nmodality = "CAR-NK"\ntargets = ["CD19"]\n'
    vocab = tmp_path / "v.toml"
    vocab.write_text(text)
    clf = Classifier.from_files(vocab)
    c = clf.classify(to_study(raw))
    assert (c.modality, c.targets, c.product, c.in_scope) == ("CAR-NK", ("CD19",), "ZZ-999", True)
    assert clf.version != CLASSIFIER.version


def test_overrides_pin_labels_and_are_marked_curated(tmp_path: Path) -> None:
    path = tmp_path / "overrides.toml"
    path.write_text(
        '[[override]]\nnct_id = "NCT09900001"\nfield = "in_scope"\nvalue = false\n'
        'reason = "duplicate registration of another trial"\n'
        '[[override]]\nnct_id = "nct09900001"\nfield = "targets"\nvalue = ["CD19/CD20"]\n'
        'reason = "sponsor press release"\n'
    )
    clf = Classifier.from_files(None, path)
    c = clf.classify(
        to_study(record("CD19 CAR-T in SLE", [{"type": "BIOLOGICAL", "name": "CD19 CAR-T"}], ["SLE"]))
    )
    assert c.in_scope is False and c.scope_reason == "curated: duplicate registration of another trial"
    assert c.targets == ("CD19/CD20",)
    assert set(c.curated) == {"in_scope", "targets"} and c.confidence["targets"] == "curated"
    assert any(e.field == "curated" and e.text == "sponsor press release" for e in c.evidence)


@pytest.mark.parametrize(
    "text,message",
    [
        ('[[override]]\nnct_id = "NCT1"\nfield = "modality"\nvalue = "x"\nreason = "r"\n', "not an NCT id"),
        (
            '[[override]]\nnct_id = "NCT09900001"\nfield = "colour"\nvalue = "x"\nreason = "r"\n',
            "field must be",
        ),
        (
            '[[override]]\nnct_id = "NCT09900001"\nfield = "in_scope"\nvalue = "yes"\nreason = "r"\n',
            "true or false",
        ),
        ('[[override]]\nnct_id = "NCT09900001"\nfield = "modality"\nvalue = "x"\n', "missing 'reason'"),
    ],
)
def test_bad_overrides_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "o.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load_overrides(path)


def test_tokens_fold_case_accents_and_punctuation() -> None:
    assert tokens("Anti-CD19 CAR-T  (Sjögren's)") == ["anti", "cd19", "car", "t", "sjogren", "s"]
    assert Vocabulary.load().find("CD70 CAR-T")[0][1] == "CD70"
    assert tokens("ＣＡＲ－Ｔ\u00a0ﬁbrosis x\u0301y") == ["car", "t", "fibrosis", "xy"]  # compatibility forms


def test_a_phrase_is_found_the_same_in_short_and_long_text() -> None:
    vocabulary = Vocabulary.load()
    short = "Anti-CD19 CAR-T cells in systemic lupus erythematosus"
    long = "Background. " * 40 + short
    assert len(short) <= 160 < len(long)  # the short one is cached, the long one is not
    assert vocabulary.find(short) == vocabulary.find(long) == vocabulary.find(short)
    assert vocabulary.find(short) == (
        ("target", "CD19", "anti cd19"),
        ("modality", "CAR-T", "car t"),
        ("indication", "SLE", "systemic lupus erythematosus"),
    )


# -- the watch queries reach every labelled study in scope ------------------------------------


def _reached(raw: dict[str, Any], settings: Settings) -> bool:
    pieces = _pieces(raw)
    areas = {
        "cond": "ConditionSearch",
        "intr": "InterventionSearch",
        "term": "BasicSearch",
        "titles": "TitleSearch",
    }
    for q in settings.queries:
        if all(
            essie.matches(essie.parse(getattr(q, k)), lambda a: pieces.get(a.lower(), []), area)
            for k, area in areas.items()
            if getattr(q, k)
        ):
            return True
    return False


@pytest.mark.parametrize("nct", IN_SCOPE)
def test_default_queries_reach_every_in_scope_study(nct: str) -> None:
    settings = load_settings(Path(__file__).parent.parent / "config.toml")
    assert _reached(copy.deepcopy(RECORDS[nct]), settings), f"no default query reaches {nct}"
