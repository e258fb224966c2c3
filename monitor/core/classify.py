"""Study -> Classification: modality, targets, cell source, platform, product, indications, scope. Pure.

Reads the whole normalized record (interventions and their other names and
descriptions, arm groups, titles, keywords, conditions and their MeSH terms, the brief
summary) against the vocabulary (monitor.core.vocabulary, `data/vocabulary.toml`), and keeps the evidence for
every label: which field, which words. Nothing here knows an NCT id: labels come from
what the record says.

Where a term is found matters. Interventions, arms and titles name what the study
gives; a summary may mention a CAR T only to exclude patients who had one. So each
label carries a confidence (high: a known product or the interventions/titles say so;
medium: keywords, conditions; low: only the summary or a default), and contradictions
put the study on the review list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from monitor.config import Settings
from monitor.core.classification import (
    MEDIUM,
    RANK,
    STRONG,
    WEAK,
    Classification,
    Evidence,
    field_strength,
)
from monitor.core.domain import Study, UserError
from monitor.core.engagers import Reading, sentences
from monitor.core.engagers import label as engager_label
from monitor.core.engagers import read as read_engager
from monitor.core.normalize import NORMALIZER_VERSION
from monitor.core.products import CAR_STEM, Catalogue, compact, find_code, guess_cell_product, unnamed_name
from monitor.core.scope import (
    Hit,
    Working,
    decide_scope,
    indications_of,
    treated_and_population,
)
from monitor.core.sources import source_and_platform
from monitor.core.targets import targets_from_text
from monitor.core.vocabulary import (
    Override,
    Product,
    Vocabulary,
    load_overrides,
    tokens,
)

__all__ = ["Classification", "Classifier", "Evidence"]

MODALITY_ORDER = ("CAAR-T", "CAR-Treg", "CAR-NK", "other", "CAR-T", "bispecific")

# Read for product names only: an outcome may name the product ("after KYV-101 infusion"),
# but a CAR word there says nothing of what the study gives.
PRODUCT_ONLY = ("outcomes",)
CELL_WORDS = {"cell", "cells", "t", "nk", "therapy", "injection", "infusion", "treg", "tregs"}


# -- the classifier ----------------------------------------------------------------------


def _fields(study: Study) -> dict[str, list[str]]:
    interventions = []
    for iv in study.interventions:
        interventions.append(iv.name)
        interventions += list(iv.other_names)
        if iv.description:
            interventions.append(iv.description)
    arms = [a.label for a in study.arms] + [a.description for a in study.arms if a.description]
    return {
        "interventions": interventions,
        "arms": arms,
        "titles": [t for t in (study.brief_title, study.official_title, study.acronym) if t],
        "keywords": list(study.keywords),
        "conditions": list(study.conditions) + [m.term for m in study.condition_mesh],
        "summary": [t for t in (study.brief_summary, study.detailed_description) if t],
        "outcomes": [t for o in study.outcomes for t in (o.measure, o.description) if t],
    }


@dataclass
class _Found:
    """Everything the vocabulary found in one record, by field."""

    hits: list[tuple[str, str, str, str, str]]  # field, text, kind, value, words

    @cached_property
    def _by_kind(self) -> dict[str, list[tuple[str, str, str, str, str]]]:
        """The hits grouped by kind, in order: a record is asked about a dozen kinds."""
        out: dict[str, list[tuple[str, str, str, str, str]]] = {}
        for h in self.hits:
            out.setdefault(h[2], []).append(h)
        return out

    def of(self, kind: str, fields: tuple[str, ...] | None = None) -> list[tuple[str, str, str, str, str]]:
        hits = self._by_kind.get(kind, [])
        if fields is None:
            return list(hits)
        return [h for h in hits if h[0] in fields]

    @cached_property
    def all_words(self) -> set[str]:
        return {w for h in self.hits for w in h[4].split()}


class Classifier:
    """Vocabulary + overrides. `version` changes whenever either file does, or the
    normalizer (the classifier reads normalized text, and studies store both)."""

    def __init__(
        self,
        vocabulary: Vocabulary | None = None,
        overrides: dict[str, list[Override]] | None = None,
        overrides_text: str = "",
    ) -> None:
        self.vocabulary = vocabulary or Vocabulary.load()
        self.catalogue = Catalogue.of(self.vocabulary)
        # the words that say a text is about an engineered cell (find_code reads them)
        self._modality_words = {
            w
            for (phrase, kinds) in self.vocabulary.index.items()
            for kind, _ in kinds
            if kind in ("modality", "modality_weak")
            for w in phrase
            if len(w) > 1 and w not in ("t", "cell", "cells")
        } | {"car", "cart", "caart", "ucar"}
        self.overrides = overrides or {}
        basis = self.vocabulary.version + overrides_text + "\0normalizer " + NORMALIZER_VERSION
        digest = hashlib.sha256(basis.encode()).hexdigest()[:12]
        self.version = digest

    @classmethod
    def from_files(cls, vocabulary: Path | None = None, overrides: Path | None = None) -> Classifier:
        text = overrides.read_text(encoding="utf-8") if overrides and overrides.exists() else ""
        return cls(Vocabulary.load(vocabulary), load_overrides(overrides), text)

    @classmethod
    def from_settings(cls, settings: Settings) -> Classifier:
        c = settings.classification
        vocabulary = settings.path(c.vocabulary)
        if vocabulary is not None and not vocabulary.is_file():
            raise UserError(f"classification.vocabulary: no such file: {vocabulary}")
        return cls.from_files(vocabulary, settings.path(c.overrides))

    def classify(self, study: Study) -> Classification:
        result = self._classify(study)
        pinned = self.overrides.get(study.nct_id)
        return self._apply(result, pinned) if pinned else result

    # -- pieces ------------------------------------------------------------------------

    def _scan(self, study: Study) -> tuple[_Found, dict[str, list[str]]]:
        fields = _fields(study)
        hits = []
        for name, texts in fields.items():
            for text in texts:
                for kind, value, words in self.vocabulary.find(text):
                    if name not in PRODUCT_ONLY or kind == "product":
                        hits.append((name, text, kind, value, words))
        return _Found(hits), fields

    def _classify(self, study: Study) -> Classification:
        """The labels in the order each depends on the last: products, modality, targets,
        cell source and platform, product name, indications, then scope."""
        found, fields = self._scan(study)
        w = Working()
        products = self._products(found)
        trapped = bool(found.of("trap", STRONG))
        engaged = cache(lambda: None if trapped else self._engaged(fields))
        modality, modalities = self._modality(found, products, trapped, w, engaged)
        if modality is None and (said := engaged()) is not None:
            # an engager described in words ("binds BCMA and CD3, directing T cells")
            modality, modalities = "bispecific", ("bispecific",)
            where, reading = said
            w.evidence.append(Evidence("modality", modality, where, reading.sentence[:160]))
            named = where in STRONG + MEDIUM or self._given_as(study, modality, [reading.sentence])
            w.confidence["modality"] = "high" if where in STRONG else "medium" if named else "low"
        elif modality and w.confidence.get("modality") == "low":
            # the summary says what the study's coded intervention is ("NEUK203-215 is an
            # allogeneic CAR-NK cell product"): as good as the interventions saying it
            summary = [
                s for t in (study.brief_summary, study.detailed_description) for s in sentences(t or "")
            ]
            if (code := self._given_as(study, modality, summary)) is not None:
                w.confidence["modality"] = "medium"
                w.evidence.append(
                    Evidence("modality", modality, "summary", f"{code}: the summary says what it is")
                )
        targets = self._targets(found, products, modality, w)
        new_targets: list[str] = []
        if modality == "bispecific" and not targets and (said := engaged()) is not None:
            label, new_targets = engager_label(said[1].antigens, self._known_target)
            if label:
                targets = [label]
                w.evidence.append(Evidence("targets", label, said[0], said[1].sentence[:160]))
                w.confidence["targets"] = "medium"
            for antigen in new_targets:
                w.evidence.append(Evidence("new target", antigen, said[0], "in no vocabulary list yet"))
        cell_source, platform = source_and_platform(found, products, modality, w)
        indications = indications_of(self.vocabulary, found, w.evidence, w.confidence, study)
        oncology = [h for h in found.of("oncology", ("conditions", "titles", "keywords"))]
        excluded = [h for h in found.of("not_autoimmune", ("conditions", "titles", "keywords"))]

        # Recall first: an autoimmune study whose product no vocabulary knows yet, but
        # looks like an engineered cell therapy, is in scope at low confidence, for review.
        guessed = None
        if not modality and indications:
            guess = guess_cell_product(study)
            if guess is not None:
                modality, code, where, text = guess
                modalities = (modality,)
                guessed = (code, where, text)
                w.evidence.append(Evidence("modality", modality, where, text))
                if CAR_STEM.fullmatch(code):  # the naming rules say what it is
                    w.confidence["modality"] = "medium"
                else:
                    w.confidence["modality"] = "low"
                    w.review.append(
                        f"{code} is no product the vocabulary knows, but looks like an engineered cell "
                        "therapy: confirm it (add it to the vocabulary) or pin the study with an override"
                    )

        # The indication treated, not the population: "lymphoma in patients with lupus" treats
        # the lymphoma; "lupus in patients who had lymphoma" treats the lupus.
        treated = treated_and_population(self.vocabulary, study)
        if treated == "autoimmune":
            oncology = []  # the cancer is who is treated, not what
        cancer_treated = treated is not None and treated != "autoimmune"
        in_scope, reason = decide_scope(
            study, modality, indications, oncology, excluded, treated, cancer_treated, w
        )
        names = self._product_names(study, products, modality, targets, cell_source, guessed, w)
        return Classification(
            in_scope=in_scope,
            scope_reason=reason,
            modality=modality,
            modalities=modalities,
            targets=tuple(targets),
            cell_source=cell_source,
            platform=platform,
            product=names[0] if names else None,
            indications=tuple(indications),
            confidence=w.confidence,
            review=tuple(w.review),
            evidence=tuple(w.evidence),
            products=names,
            product_aliases=tuple(self.catalogue.aliases(names)),
            new_targets=tuple(new_targets),
        )

    def _engaged(self, fields: dict[str, list[str]]) -> tuple[str, Reading] | None:
        """(field, reading) of the first text that describes a T-cell engager, strongest
        fields first: asked only when the vocabulary's words did not settle it."""
        for name in STRONG + MEDIUM + WEAK:
            for text in fields.get(name, ()):
                reading = read_engager(text, self._known_target)
                if reading is not None:
                    return name, reading
        return None

    def _given_as(self, study: Study, modality: str, said: list[str]) -> str | None:
        """The code an intervention is named by, when one of the `said` sentences names it
        beside the modality (or, for an engager's sentence, at all)."""
        code = find_code(study, self.vocabulary, self._modality_words)
        if code is None or code[1] != "interventions":
            return None
        key = compact(code[0])
        for sentence in said:
            if key in compact(sentence) and (
                modality == "bispecific"
                or any(
                    k in ("modality", "modality_weak") and v == modality
                    for k, v, _ in self.vocabulary.find(sentence)
                )
            ):
                return code[0]
        return None

    def _known_target(self, word: str) -> str | None:
        return next((v for k, v, _ in self.vocabulary.find(word) if k == "target"), None)

    def _products(self, found: _Found) -> list[tuple[Product, Hit]]:
        """Known products named in the record, strong fields first: the most specific evidence there is."""
        products: list[tuple[Product, Hit]] = []
        for hit in found.of("product", STRONG + MEDIUM) + found.of("product", WEAK + PRODUCT_ONLY):
            p = self.vocabulary.products[hit[3]]
            if all(p.name != q.name for q, _ in products):
                products.append((p, hit))
        return products

    def _modality(
        self,
        found: _Found,
        products: list[tuple[Product, Hit]],
        trapped: bool,
        w: Working,
        engaged: Callable[[], Any],
    ) -> tuple[str | None, tuple[str, ...]]:
        """(the primary modality, every modality named): the strongest evidence wins."""
        strength_of: dict[str, str] = {}
        for p, hit in products:
            strength = "high" if hit[0] in STRONG + MEDIUM else "low"
            if RANK[strength] > RANK.get(strength_of.get(p.modality, ""), 0):
                strength_of[p.modality] = strength
                w.note("modality", p.modality, hit)
        for hit in found.of("modality"):
            m, strength = hit[3], field_strength(hit[0])
            if m == "bispecific" and not self._engager_ok(found, trapped, engaged):
                continue
            if RANK[strength] > RANK.get(strength_of.get(m, ""), 0):
                strength_of[m] = strength
                w.note("modality", m, hit)
        for hit in found.of("modality_weak"):
            m, strength = hit[3], field_strength(hit[0])
            if RANK[strength] <= RANK.get(strength_of.get(m, ""), 0):
                continue
            if not self._weak_ok(m, hit, found, trapped, engaged):
                continue
            strength_of[m] = strength
            w.note("modality", m, hit)
        modalities = tuple(m for m in MODALITY_ORDER if m in strength_of)
        best = max((RANK[s] for s in strength_of.values()), default=0)
        modality = next((m for m in modalities if RANK[strength_of[m]] == best), None)
        if modality:
            w.confidence["modality"] = strength_of[modality]
        return modality, modalities

    def _targets(
        self, found: _Found, products: list[tuple[Product, Hit]], modality: str | None, w: Working
    ) -> list[str]:
        """The primary modality's products first, then other products the study gives (a
        sub-study arm); failing those, what the text says the therapy targets."""
        targets: list[str] = []
        for p, hit in sorted(products, key=lambda ph: ph[0].modality != modality):
            if p.targets:
                label = "/".join(p.targets)
                if label not in targets:
                    targets.append(label)
                    w.note("targets", label, hit)
        if not targets and modality:
            targets = targets_from_text(self.vocabulary, found, modality, w.evidence)
        if targets:
            strong = any(e.label == "targets" and e.field in STRONG + MEDIUM for e in w.evidence)
            w.confidence["targets"] = "high" if strong else "medium"
        return targets

    def _product_names(
        self,
        study: Study,
        products: list[tuple[Product, Hit]],
        modality: str | None,
        targets: list[str],
        cell_source: str | None,
        guessed: tuple[str, str, str] | None,
        w: Working,
    ) -> tuple[str, ...]:
        """Every product the study gives, the primary first: the known products it names
        (in the interventions, arms, titles, keywords or conditions; failing those, in the
        summary or outcomes), else a code the vocabulary does not know yet, else what the
        product is ("unnamed CD19 CAR-T, <lead sponsor>"). Never a sentence of the record."""
        if not modality:
            return ()
        strong = [(p, h) for p, h in products if h[0] in STRONG + MEDIUM]
        named = strong or products
        if named:
            named = sorted(named, key=lambda ph: ph[0].modality != modality)  # stable: record order
            for p, hit in named:
                w.note("product", p.name, hit)
            return tuple(p.name for p, _ in named)
        code = guessed or find_code(study, self.vocabulary, self._modality_words)
        if code is not None:
            w.evidence.append(Evidence("product", code[0], code[1], code[2][:160]))
            return (code[0],)
        # one unnamed product per target the record offers as an alternative (two arms)
        names = tuple(
            unnamed_name(modality, [t] if t else [], cell_source, study.lead_sponsor)
            for t in (targets or [""])
        )
        why = "the record names no product: named by modality, target and lead sponsor"
        w.evidence += [Evidence("product", name, "derived", why) for name in names]
        return names

    def _engager_ok(self, found: _Found, trapped: bool, engaged: Callable[[], Any] = lambda: None) -> bool:
        """An engager word counts with CD3 in the record, or beside a T cell engaged in words."""
        needs = self.vocabulary.modality_needs.get("bispecific", set())
        return not trapped and bool(
            needs & found.all_words
            or any(w in needs for h in found.hits for w in tokens(h[1]))
            or engaged() is not None
        )

    def _weak_ok(
        self,
        modality: str,
        hit: tuple[str, str, str, str, str],
        found: _Found,
        trapped: bool,
        engaged: Callable[[], Any],
    ) -> bool:
        """A weak word ("CAR", "bispecific") counts next to an antigen or a cell word in the same text."""
        if modality == "bispecific":
            return self._engager_ok(found, trapped, engaged) and hit[0] in STRONG + MEDIUM
        if found.of("trap_car"):
            return False  # "cART" next to antiretroviral therapy, CART the regression tree
        words = set(tokens(hit[1]))
        same_text_target = any(h[1] == hit[1] and h[2] == "target" for h in found.hits)
        return hit[0] in STRONG + MEDIUM and (same_text_target or bool(words & CELL_WORDS))

    def _apply(self, result: Classification, pinned: list[Override]) -> Classification:
        changes: dict[str, Any] = {}
        evidence = list(result.evidence)
        confidence = dict(result.confidence)
        for o in pinned:
            value = tuple(o.value) if o.field in ("targets", "indications") else o.value
            if o.field == "product":
                # a curated product is named as the catalogue names it (rese-cel is CABA-201);
                # a list pins every product the study gives, the primary first
                names = self.catalogue.canonical(o.value if isinstance(o.value, list) else [o.value or ""])
                changes["products"] = names
                changes["product_aliases"] = tuple(self.catalogue.aliases(names))
                value = names[0] if names else None
            changes[o.field] = value
            shown = "; ".join(o.value) if isinstance(o.value, list) else str(o.value)
            evidence.append(Evidence(o.field, shown, "curated", o.reason))
            confidence[o.field] = "curated"
        if "in_scope" in changes:
            changes["scope_reason"] = "curated: " + next(o.reason for o in pinned if o.field == "in_scope")
        return replace(
            result,
            **changes,
            evidence=tuple(evidence),
            confidence=confidence,
            curated=tuple(o.field for o in pinned),
            review=(),
        )
