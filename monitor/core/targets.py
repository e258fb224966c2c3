"""What a record says a therapy targets, read from its text when no known product says
it. Pure.

Antigens named together in one phrase form one combined target ("CD19/BCMA CAR-T");
alternatives ("CD19 or CD19-BCMA CAR-T", "A; B") stay separate targets; an engager's
target arm is written with its T-cell arm ("CD19xCD3").
"""

from __future__ import annotations

import re
from typing import Protocol

from monitor.core.classification import MEDIUM, STRONG, WEAK, Evidence
from monitor.core.vocabulary import Vocabulary

# "CD19 and BCMA", "BCMA CART + CD19 CART" name one dual-target therapy; ";" and "or" offer alternatives.
_ALTERNATIVES = re.compile(r";|\bor\b", re.IGNORECASE)


class Found(Protocol):
    """The vocabulary's hits in one record (classify._Found)."""

    def of(
        self, kind: str, fields: tuple[str, ...] | None = None
    ) -> list[tuple[str, str, str, str, str]]: ...


def targets_from_text(
    vocabulary: Vocabulary, found: Found, modality: str, evidence: list[Evidence]
) -> list[str]:
    """Antigens named together in one phrase form one combined target ("CD19/BCMA CAR-T");
    alternatives ("CD19 or CD19-BCMA CAR-T", "A; B") stay separate targets."""
    order = vocabulary.target_order
    for fields in (STRONG, MEDIUM, WEAK):
        texts = {h[1]: h[0] for h in found.of("target", fields)}
        labels: list[str] = []
        for text, field_name in texts.items():
            for segment in _ALTERNATIVES.split(text):
                antigens: list[str] = []
                for kind, value, _ in vocabulary.find(segment):
                    if kind == "target" and value not in antigens:
                        antigens.append(value)
                if not antigens:
                    continue
                ordered = sorted(antigens, key=order.index)
                label = "x".join(ordered) + "xCD3" if modality == "bispecific" else "/".join(ordered)
                if label not in labels:
                    labels.append(label)
                    evidence.append(Evidence("targets", label, field_name, text[:160]))
        if labels:
            # A combination named somewhere makes the same antigen named alone elsewhere redundant,
            # unless the record offers the single antigen as an alternative arm.
            combos = [lab for lab in labels if "/" in lab]
            alternatives = {
                lab
                for t in texts
                for lab in _segment_labels(vocabulary, t, order)
                if len(_ALTERNATIVES.split(t)) > 1
            }
            return [
                lab
                for lab in labels
                if lab in combos or lab in alternatives or not any(lab in c.split("/") for c in combos)
            ]
    return []


def _segment_labels(vocabulary: Vocabulary, text: str, order: list[str]) -> list[str]:
    out = []
    for segment in _ALTERNATIVES.split(text):
        antigens = sorted({v for k, v, _ in vocabulary.find(segment) if k == "target"}, key=order.index)
        if antigens:
            out.append("/".join(antigens))
    return out
