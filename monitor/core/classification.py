"""What the classifier says of one study: its labels, how sure it is of each, and the
evidence (which field, which words) behind every one. Pure data; stored with each study
as JSON (`to_dict`), read back with `from_dict`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Field roles: what a mention there proves. Interventions, arms and titles name what the
# study gives; keywords and conditions are the registry's labels; a summary may mention a
# therapy only to exclude patients who had one.
STRONG = ("interventions", "arms", "titles")
MEDIUM = ("keywords", "conditions")
WEAK = ("summary",)
RANK = {"high": 3, "medium": 2, "low": 1}


def field_strength(field_name: str) -> str:
    """How much a mention in this field proves: high, medium or low."""
    return "high" if field_name in STRONG else "medium" if field_name in MEDIUM else "low"


@dataclass(frozen=True, slots=True)
class Evidence:
    label: str
    value: str
    field: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"label": self.label, "value": self.value, "field": self.field, "text": self.text}


@dataclass(frozen=True, slots=True)
class Classification:
    in_scope: bool
    scope_reason: str
    modality: str | None
    modalities: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    cell_source: str | None = None
    platform: str | None = None
    product: str | None = None  # the primary product: products[0]
    indications: tuple[str, ...] = ()
    confidence: dict[str, str] = field(default_factory=dict)
    review: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    curated: tuple[str, ...] = ()
    # Every product the study gives, canonical names, the primary first; and the other
    # names of the known ones (codes, INNs, brands), which search reads.
    products: tuple[str, ...] = ()
    product_aliases: tuple[str, ...] = ()
    # Target antigens the vocabulary does not list yet (an engager's arm read from words).
    new_targets: tuple[str, ...] = ()

    @property
    def needs_review(self) -> bool:
        return bool(self.review)

    @property
    def target_label(self) -> str:
        return "; ".join(self.targets) if self.targets else "undisclosed"  # as describe.targets_label

    def to_dict(self) -> dict[str, Any]:
        return {
            "in_scope": self.in_scope,
            "scope_reason": self.scope_reason,
            "modality": self.modality,
            "modalities": list(self.modalities),
            "targets": list(self.targets),
            "cell_source": self.cell_source,
            "platform": self.platform,
            "product": self.product,
            "products": list(self.products),
            "product_aliases": list(self.product_aliases),
            "new_targets": list(self.new_targets),
            "indications": list(self.indications),
            "confidence": dict(self.confidence),
            "needs_review": self.needs_review,
            "review": list(self.review),
            "evidence": [e.to_dict() for e in self.evidence],
            "curated": list(self.curated),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Classification:
        return cls(
            in_scope=bool(d["in_scope"]),
            scope_reason=d.get("scope_reason", ""),
            modality=d.get("modality"),
            modalities=tuple(d.get("modalities") or ()),
            targets=tuple(d.get("targets") or ()),
            cell_source=d.get("cell_source"),
            platform=d.get("platform"),
            product=d.get("product"),
            # a classification stored before products were entities names one product
            products=tuple(d.get("products") or ([d["product"]] if d.get("product") else [])),
            product_aliases=tuple(d.get("product_aliases") or ()),
            new_targets=tuple(d.get("new_targets") or ()),
            indications=tuple(d.get("indications") or ()),
            confidence=dict(d.get("confidence") or {}),
            review=tuple(d.get("review") or ()),
            evidence=tuple(Evidence(**e) for e in d.get("evidence") or ()),
            curated=tuple(d.get("curated") or ()),
        )
