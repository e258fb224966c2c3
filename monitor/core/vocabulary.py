"""The classifier's vocabulary and a curator's overrides, read from TOML, and the word
tokens both are matched on. Pure (reads only the files it is given).

The vocabulary (data/vocabulary.toml) lists products with their codes, modalities,
targets, sources and platforms; modality terms, indication groups, oncology and other
exclusion terms, and traps. Matching is on word tokens with a first-token index (longest
phrase first; short texts cached). Overrides pin one label of one study, with a reason.
"""

from __future__ import annotations

import hashlib
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress
from pathlib import Path
from typing import Any

from monitor.core.domain import UserError, check_nct_id
from monitor.paths import DATA_DIR

VOCABULARY_FILE = DATA_DIR / "vocabulary.toml"

LABELS = ("in_scope", "modality", "targets", "cell_source", "platform", "product", "indications")

_SHORT_TEXT = 160  # texts up to this length are cached by Vocabulary.find

# Every byte that is not an ASCII letter or digit becomes a space (letters are lower-cased first).
_SEPARATE = bytes(c if chr(c).isascii() and chr(c).isalnum() else 0x20 for c in range(256))


def tokens(text: str) -> list[str]:
    """Lower-case ASCII word tokens: accents, hyphens, slashes and '+' become boundaries.

    Accents are dropped, not boundaries ("Sjögren" is "sjogren"); any other character
    that is not an ASCII letter or digit separates words. Most registry text is ASCII,
    which skips the Unicode decomposition; the split itself is a byte translation (a
    regex over a summary took four times as long).
    """
    if not text.isascii():
        folded = unicodedata.normalize("NFKD", text).casefold()
        # what is left outside ASCII (Greek, CJK, symbols) separates words, as "?" does
        text = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return text.encode("ascii", "replace").lower().translate(_SEPARATE).decode("ascii").split()


@dataclass(frozen=True, slots=True)
class Product:
    """A programme as the vocabulary knows it (see core.products for how it is found)."""

    name: str
    modality: str
    targets: tuple[str, ...]
    source: str | None
    platform: str | None
    aliases: tuple[str, ...] = ()  # codes and spellings records use
    developer: str | None = None
    inn: tuple[str, ...] = ()  # international nonproprietary names (and their -cel short forms)
    brands: tuple[str, ...] = ()


class Vocabulary:
    """The data file compiled into a phrase index: token tuple -> what it means."""

    def __init__(self, data: dict[str, Any], version: str) -> None:
        self.version = version
        self.index: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        self.products: dict[str, Product] = {}
        self.target_order: list[str] = list(data.get("targets", {}))
        self.indication_order: list[str] = list(data.get("indication", {}))
        self.modality_needs: dict[str, set[str]] = {}
        for modality, spec in data.get("modality", {}).items():
            for term in spec.get("strong", []):
                self._add(term, "modality", modality)
            for term in spec.get("weak", []):
                self._add(term, "modality_weak", modality)
            if spec.get("needs"):
                self.modality_needs[modality] = {t for term in spec["needs"] for t in tokens(term)}
        for p in data.get("product", []):
            product = Product(
                p["name"],
                p["modality"],
                tuple(p.get("targets", [])),
                p.get("source"),
                p.get("platform"),
                aliases=tuple(p.get("aliases", [])),
                developer=p.get("developer"),
                inn=tuple(p.get("inn", [])),
                brands=tuple(p.get("brands", [])),
            )
            self.products[p["name"]] = product
            for alias in [p["name"], *product.aliases, *product.inn, *product.brands]:
                self._add(alias, "product", p["name"])
        for target, terms in data.get("targets", {}).items():
            for term in terms:
                self._add(term, "target", target)
        for source, terms in data.get("source", {}).items():
            for term in terms:
                self._add(term, "source", source)
        for platform, terms in data.get("platform", {}).items():
            for term in terms:
                self._add(term, "platform", platform)
        for group, terms in data.get("indication", {}).items():
            for term in terms:
                self._add(term, "indication", group)
        for term in data.get("oncology", {}).get("terms", []):
            self._add(term, "oncology", "oncology")
        for term in data.get("not_autoimmune", {}).get("terms", []):
            self._add(term, "not_autoimmune", "not autoimmune")
        for term in data.get("traps", {}).get("not_engagers", []):
            self._add(term, "trap", "not an engager")
        for term in data.get("traps", {}).get("not_car", []):
            self._add(term, "trap_car", "not a CAR")
        self.starts: dict[str, list[int]] = {}
        for phrase in self.index:
            lengths = self.starts.setdefault(phrase[0], [])
            if len(phrase) not in lengths:
                lengths.append(len(phrase))
        for lengths in self.starts.values():
            lengths.sort(reverse=True)
        self.pairs = {phrase[:2] for phrase in self.index if len(phrase) > 1}  # the first two words
        self._find_short = lru_cache(maxsize=8192)(self._find)

    def _add(self, term: str, kind: str, value: str) -> None:
        key = tuple(tokens(term))
        if key and (kind, value) not in self.index.setdefault(key, []):
            self.index[key].append((kind, value))

    @classmethod
    def load(cls, path: Path | None = None) -> Vocabulary:
        """The file as it is now, compiled: every poll, relabelling and page reads it (so a
        curator's edit counts at once), but the same bytes are compiled once per process."""
        file = path or VOCABULARY_FILE
        try:
            return _compiled(file.read_bytes())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UserError(f"cannot read the vocabulary {file}: {exc}") from None

    def find(self, text: str) -> tuple[tuple[str, str, str], ...]:
        """(kind, value, matched words) for every vocabulary phrase in `text`, longest match first.

        Short texts (condition and MeSH terms, keywords, intervention names, arm labels)
        recur across thousands of records and are looked up once, in a bounded cache.
        """
        if len(text) <= _SHORT_TEXT:
            return self._find_short(text)
        return self._find(text)

    def _find(self, text: str) -> tuple[tuple[str, str, str], ...]:
        toks = tokens(text)
        n = len(toks)
        out: list[tuple[str, str, str]] = []
        resume = 0  # a match consumes its words: the next one starts after it
        # Only words that begin some phrase are looked at; the scan for them runs in C.
        for i in compress(range(n), map(self.starts.__contains__, toks)):
            if i < resume:
                continue
            # Unless some phrase begins with these two words, only a one-word phrase can match.
            longer = i + 1 < n and (toks[i], toks[i + 1]) in self.pairs
            for length in self.starts[toks[i]] if longer else (1,):
                if i + length <= n:
                    key = tuple(toks[i : i + length])
                    hits = self.index.get(key)
                    if hits:
                        words = " ".join(key)
                        out += [(kind, value, words) for kind, value in hits]
                        resume = i + length
                        break
        return tuple(out)


@lru_cache(maxsize=4)
def _compiled(raw: bytes) -> Vocabulary:
    """One Vocabulary per distinct file content (nothing changes a Vocabulary once built)."""
    return Vocabulary(tomllib.loads(raw.decode("utf-8")), hashlib.sha256(raw).hexdigest()[:12])


@dataclass(frozen=True, slots=True)
class Override:
    nct_id: str
    field: str
    value: Any
    reason: str


def load_overrides(path: Path | None) -> dict[str, list[Override]]:
    """A curator's pinned labels: [[override]] nct_id, field, value, reason."""
    if path is None or not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read the overrides file {path}: {exc}") from None
    out: dict[str, list[Override]] = {}
    for i, entry in enumerate(data.get("override", []), start=1):
        where = f"{path}: override #{i}"
        unknown = set(entry) - {"nct_id", "field", "value", "reason"}
        if unknown:
            raise UserError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        missing = {"nct_id", "field", "value", "reason"} - set(entry)
        if missing:
            raise UserError(f"{where}: missing {sorted(missing)[0]!r}")
        nct = check_nct_id(str(entry["nct_id"]))
        name, value = entry["field"], entry["value"]
        if name not in LABELS:
            raise UserError(f"{where}: field must be one of {', '.join(LABELS)}, not {name!r}")
        if name == "in_scope" and not isinstance(value, bool):
            raise UserError(f"{where}: in_scope takes true or false")
        if name in ("targets", "indications") or (name == "product" and isinstance(value, list)):
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UserError(f"{where}: {name} takes a list of strings")
        elif name != "in_scope" and not (isinstance(value, str) or value is None):
            raise UserError(f"{where}: {name} takes a string")
        if not str(entry["reason"]).strip():
            raise UserError(f"{where}: give a reason")
        out.setdefault(nct, []).append(Override(nct, name, value, str(entry["reason"])))
    return out
