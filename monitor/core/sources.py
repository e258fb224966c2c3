"""Cell source (autologous, allogeneic, in vivo) and platform (mRNA, viral vector) of a
study's therapy, with their evidence. Pure."""

from __future__ import annotations

from typing import Any

from monitor.core.classification import MEDIUM, RANK, STRONG, WEAK, Evidence, field_strength
from monitor.core.scope import Hit, Working
from monitor.core.targets import Found
from monitor.core.vocabulary import Product


def source_and_platform(
    found: Found, products: list[tuple[Product, Hit]], modality: str | None, w: Working
) -> tuple[str | None, str | None]:
    """Where the cells come from and how the CAR is made: a known product of the primary
    modality says so; else the strongest words of the record (in vivo wins over the
    autologous cells it makes; two sources named at one strength go to review)."""
    cell_source = _pick(found, "source", products, "source", w.evidence, w.confidence, w.review, modality)
    platform = _pick(found, "platform", products, "platform", w.evidence, w.confidence, w.review, modality)
    if modality == "CAR-NK" and cell_source is None:
        cell_source, w.confidence["cell_source"] = "allogeneic", "low"  # NK products are donor-derived
    if modality == "bispecific":
        cell_source = None
        w.confidence.pop("cell_source", None)
    return cell_source, platform


def _pick(
    found: Found,
    kind: str,
    products: list[tuple[Product, Any]],
    attr: str,
    evidence: list[Evidence],
    confidence: dict[str, str],
    review: list[str],
    modality: str | None,
) -> str | None:
    for p, hit in products:
        value = getattr(p, attr)
        if value and p.modality == modality:
            evidence.append(
                Evidence(kind if kind != "source" else "cell_source", value, hit[0], hit[1][:160])
            )
            confidence["cell_source" if kind == "source" else kind] = "high"
            return value
    best: dict[str, int] = {}
    hits: dict[str, tuple[str, str, str, str, str]] = {}
    for hit in found.of(kind, STRONG + MEDIUM + WEAK):
        rank = RANK[field_strength(hit[0])]
        if rank > best.get(hit[3], 0):
            best[hit[3]], hits[hit[3]] = rank, hit
    if not best:
        return None
    if kind == "source" and "in vivo" in best:
        chosen = "in vivo"  # "in vivo CAR-T ... produces autologous CAR-T cells": in vivo wins
    else:
        top = max(best.values())
        leaders = [v for v, r in best.items() if r == top]
        if len(leaders) > 1:
            review.append(
                f"the record names more than one {kind.replace('source', 'cell source')}: "
                + ", ".join(sorted(leaders))
            )
        chosen = (
            sorted(leaders)[0]
            if kind != "source"
            else ("allogeneic" if "allogeneic" in leaders else leaders[0])
        )
    label = "cell_source" if kind == "source" else kind
    evidence.append(Evidence(label, chosen, hits[chosen][0], hits[chosen][1][:160]))
    confidence[label] = {3: "high", 2: "medium", 1: "low"}[best[chosen]]
    return chosen
