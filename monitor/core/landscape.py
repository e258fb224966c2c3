"""The landscape view: filter, search, sort, count and page the tracked studies. Pure.

A `LandscapeQuery` is the whole state of a landscape page, so that it round-trips through
a URL's query string (a view can be bookmarked and shared) and the JSON API reads the same
parameters. Values are checked against what the classifier and the registry can produce:
a typo is a one-line error naming the valid values, never an empty page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from monitor.core import products
from monitor.core.describe import STATUS_LABELS
from monitor.core.domain import UserError
from monitor.core.filters import fold, resolve_phases, resolve_statuses
from monitor.core.registrations import resolve_registries

# column -> how rows sort by it (text case-folded; empty values last either way)
SORT_KEYS: dict[str, str] = {
    "updated": "last_update_post_date",
    "nct": "nct_id",
    "title": "title",
    "status": "status",
    "phase": "phases",
    "modality": "modality",
    "targets": "targets",
    "indications": "indications",
    "source": "cell_source",
    "product": "product",
    "sponsor": "sponsor",
    "enrollment": "enrollment",
    "start": "start",
    "completion": "primary_completion",
    "posted": "first_posted",
    "sites": "sites",
}
PER_PAGE = (25, 50, 100, 500)
CELL_SOURCES = ("autologous", "allogeneic", "in vivo")

# URL parameter -> LandscapeQuery field (each may repeat: any of)
LIST_PARAMS = {
    "modality": "modalities",
    "target": "targets",
    "indication": "indications",
    "status": "statuses",
    "phase": "phases",
    "sponsor": "sponsors",
    "country": "countries",
    "source": "cell_sources",
    "product": "products",
    "registry": "registries",
}


def status_codes(values: Iterable[str]) -> tuple[str, ...]:
    """Statuses as the registry codes them ("Recruiting", "active not recruiting" and
    "RECRUITING" all read); an unknown one is a UserError naming the valid codes."""
    return resolve_statuses(values, STATUS_LABELS)


def search_text(classification: Mapping[str, Any]) -> str:
    """What free-text search reads beyond the columns: the evidence texts of the product and
    modality labels (product codes and names as the record writes them). Stored with each
    classification (studies.search_text), so a search never decodes the evidence."""
    evidence = classification.get("evidence", [])
    return " ".join(str(e.get("text", "")) for e in evidence if e.get("label") in ("product", "modality"))


@dataclass(frozen=True)
class LandscapeQuery:
    modalities: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    indications: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    phases: tuple[str, ...] = ()
    sponsors: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    cell_sources: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    registries: tuple[str, ...] = ()  # registry keys: on any of them
    q: str = ""
    include_out_of_scope: bool = False
    needs_review: bool = False
    sort: str = "updated"
    descending: bool = True
    page: int = 1
    per_page: int = 50
    cursor: str = ""  # the API's: continue after this row (see `make_cursor`), instead of `page`

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str]]) -> LandscapeQuery:
        """From a query string (each key with its list of values); bad values raise UserError."""
        known = set(LIST_PARAMS) | {"q", "all", "review", "sort", "order", "page", "per_page", "cursor"}
        for key in params:
            if key not in known:
                raise UserError(f"unknown parameter {key!r}; known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {
            dest: tuple(v.strip() for v in params.get(name, ()) if v.strip())
            for name, dest in LIST_PARAMS.items()
        }
        values["statuses"] = status_codes(values["statuses"])
        values["phases"] = resolve_phases(values["phases"])
        values["registries"] = resolve_registries(values["registries"])
        for s in values["cell_sources"]:
            if fold(s) not in CELL_SOURCES:
                raise UserError(f"source: unknown value {s!r}; valid: {', '.join(CELL_SOURCES)}")
        sort = _one(params, "sort", "updated")
        if sort not in SORT_KEYS:
            raise UserError(f"sort: unknown column {sort!r}; valid: {', '.join(SORT_KEYS)}")
        order = _one(params, "order", "desc" if sort == "updated" else "asc")
        if order not in ("asc", "desc"):
            raise UserError(f"order: {order!r} is neither asc nor desc")
        page = _int(params, "page", 1, 1, 10**6)
        per_page = _int(params, "per_page", 50, 1, max(PER_PAGE))
        cursor = _one(params, "cursor", "").strip()
        if cursor:
            read_cursor(cursor)  # a malformed cursor is a one-line error, here
        return cls(
            cursor=cursor,
            **values,
            q=_one(params, "q", "").strip(),
            include_out_of_scope=_flag(params, "all"),
            needs_review=_flag(params, "review"),
            sort=sort,
            descending=order == "desc",
            page=page,
            per_page=per_page,
        )

    def to_params(self, **changes: Any) -> list[tuple[str, str]]:
        """The query string pairs of this view (with `changes` applied), defaults left out."""
        q = replace(self, **changes) if changes else self
        out: list[tuple[str, str]] = []
        for name, dest in LIST_PARAMS.items():
            out += [(name, v) for v in getattr(q, dest)]
        if q.q:
            out.append(("q", q.q))
        if q.include_out_of_scope:
            out.append(("all", "1"))
        if q.needs_review:
            out.append(("review", "1"))
        if q.sort != "updated":
            out.append(("sort", q.sort))
        if q.descending != (q.sort == "updated"):
            out.append(("order", "desc" if q.descending else "asc"))
        if q.per_page != 50:
            out.append(("per_page", str(q.per_page)))
        if q.page != 1:
            out.append(("page", str(q.page)))
        if q.cursor:
            out.append(("cursor", q.cursor))
        return out

    @property
    def filtered(self) -> bool:
        return any(getattr(self, dest) for dest in LIST_PARAMS.values()) or bool(self.q) or self.needs_review


def _one(params: Mapping[str, Sequence[str]], key: str, default: str) -> str:
    values = params.get(key) or ()
    return values[-1] if values else default


def _flag(params: Mapping[str, Sequence[str]], key: str) -> bool:
    return _one(params, key, "").strip().lower() in ("1", "true", "yes", "on")


def _int(params: Mapping[str, Sequence[str]], key: str, default: int, low: int, high: int) -> int:
    raw = _one(params, key, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"{key}: {raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise UserError(f"{key}: {value} is not between {low} and {high}")
    return value


@dataclass(frozen=True)
class Picture:
    """What the landscape's charts draw, for the current filters: studies by modality and
    indication, by status (registry codes), registrations per year (first posted), and
    studies with sites in each country."""

    modalities: list[str]
    indications: list[str]
    matrix: dict[str, dict[str, int]]
    by_status: list[tuple[str, int]]
    by_year: list[tuple[str, int]]
    by_country: list[tuple[str, int]]


def picture(hits: Sequence[Mapping[str, Any]]) -> Picture:
    modality = Counter(r["modality"] or "not stated" for r in hits)
    indication = Counter(i for r in hits for i in r["indications"] or ["none"])
    modalities = [m for m, _ in sorted(modality.items(), key=lambda kv: (-kv[1], kv[0]))]
    indications = [i for i, _ in sorted(indication.items(), key=lambda kv: (-kv[1], kv[0]))]
    matrix = {m: dict.fromkeys(indications, 0) for m in modalities}
    for r in hits:
        for i in r["indications"] or ["none"]:
            matrix[r["modality"] or "not stated"][i] += 1
    status = Counter(r["status"] or "UNKNOWN" for r in hits)
    years = Counter(str(r.get("first_posted") or "")[:4] for r in hits if r.get("first_posted"))
    span = [str(y) for y in range(int(min(years)), int(max(years)) + 1)] if years else []
    countries = Counter(c for r in hits for c in r["countries"] or [])
    return Picture(
        modalities,
        indications,
        matrix,
        sorted(status.items(), key=lambda kv: (-kv[1], kv[0])),
        [(y, years.get(y, 0)) for y in span],
        sorted(countries.items(), key=lambda kv: (-kv[1], kv[0])),
    )


@dataclass(frozen=True)
class LandscapeView:
    query: LandscapeQuery
    rows: list[dict[str, Any]]  # this page
    total: int  # matching, all pages
    by_modality: list[tuple[str, int]] = field(default_factory=list)
    by_indication: list[tuple[str, int]] = field(default_factory=list)
    matching: list[dict[str, Any]] = field(default_factory=list)  # every matching row (downloads)
    next_cursor: str | None = None  # where the next page starts (None: this is the last)
    picture: Picture | None = None  # the charts' counts, over every match
    other_holds: tuple[str, ...] = ()  # what "other autoimmune" holds, as the records name it
    # per registry, the matching studies on it (own or named registration), and how many
    # are on more than one
    by_registry: list[tuple[str, int]] = field(default_factory=list)
    on_several: int = 0

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))


def _any_of(wanted: Iterable[str], have: Iterable[str]) -> bool:
    w = {fold(x) for x in wanted}
    return bool(w & {fold(x) for x in have})


def antigens(targets: Iterable[str]) -> set[str]:
    """Each antigen of the target labels: `CD19/BCMA` and `CD19xCD3` name both."""
    out = set()
    for t in targets:
        for part in t.replace("x", "/").split("/"):
            if part.strip():
                out.add(part.strip())
    return out


def matches(row: Mapping[str, Any], q: LandscapeQuery) -> bool:
    """True when a study (a `study_dict`) is in the view. Lists are "any of"; kinds all apply."""
    if not q.include_out_of_scope and not row["in_scope"]:
        return False
    if q.needs_review and not row["needs_review"]:
        return False
    checks: list[tuple[tuple[str, ...], Iterable[str]]] = [
        (q.modalities, [row["modality"] or ""]),
        (q.targets, antigens(row["targets"]) | set(row["targets"])),
        (q.indications, row["indications"]),
        (q.statuses, [row["status"] or ""]),
        (q.phases, row["phases"]),
        (q.countries, row["countries"]),
        (q.cell_sources, [row["cell_source"] or ""]),
    ]
    for wanted, have in checks:
        if wanted and not _any_of(wanted, have):
            return False
    if q.sponsors and not any(fold(s) in fold(row["sponsor"]) for s in q.sponsors):
        return False
    if q.registries and not {r["registry"] for r in row.get("registrations") or []} & set(q.registries):
        return False
    if q.products and not products.matches(q.products, row.get("products") or [row.get("product") or ""]):
        return False  # a product is found however it is typed: KYV-101, kyv101, "KYV 101"
    if q.q:
        text, compact = haystack(row)
        if not all(word in text or _compact(word) in compact for word in fold(q.q).split()):
            return False
    return True


def haystack(row: Mapping[str, Any]) -> tuple[str, str]:
    """What free-text search reads of a row, folded; and the same as letters and digits
    only (a product code however it is typed: CABA-201, caba201)."""
    named = " ".join(row.get("products") or [])
    text = " ".join(str(row.get(k) or "") for k in ("nct_id", "title", "product", "sponsor", "search"))
    text += " " + named
    return fold(text), _compact(text)


def search_words(q: str) -> list[tuple[str, str]]:
    """A search's words, each folded and compacted: a row matches when, for every word,
    its folded text holds the word or its compact text holds the compact word."""
    return [(word, _compact(word)) for word in fold(q).split()]


_compact = products.compact  # letters and digits only: CABA-201, caba201, "CABA 201" are one code


def sort_value(row: Mapping[str, Any], key: str) -> str:
    """How a row sorts by a column: text folded, lists joined, numbers zero-padded; ""
    for an empty value (last either way)."""
    v = row.get(SORT_KEYS[key])
    if isinstance(v, bool):
        v = str(v)
    elif isinstance(v, int):
        return f"{v:015d}"  # numbers sort as numbers (9 before 10)
    if isinstance(v, list):
        v = "|".join(v)
    return fold(str(v)) if v not in (None, "", []) else ""


def view(rows: Sequence[Mapping[str, Any]], q: LandscapeQuery, *, counts: bool = True) -> LandscapeView:
    """The page of `rows` the query asks for, with counts over everything it matches (not
    for a caller that shows none: the API's pages, downloads)."""
    hits = [dict(r) for r in rows if matches(r, q)]
    keyed = [(sort_value(r, q.sort), r) for r in hits]
    filled = [kr for kr in keyed if kr[0]]
    filled.sort(key=lambda kr: kr[1]["nct_id"])  # a stable, documented tie-break
    filled.sort(key=lambda kr: kr[0], reverse=q.descending)
    empty = sorted((r for k, r in keyed if not k), key=lambda r: r["nct_id"])
    ordered = [r for _, r in filled] + empty
    if q.cursor:
        value, nct = read_cursor(q.cursor)
        start = next(
            (i for i, r in enumerate(ordered) if _after(sort_value(r, q.sort), r["nct_id"], value, nct, q)),
            len(ordered),
        )
    else:
        start = (q.page - 1) * q.per_page
    page = ordered[start : start + q.per_page]
    more = start + q.per_page < len(ordered)
    cursor = make_cursor(sort_value(page[-1], q.sort), page[-1]["nct_id"]) if more and page else None
    if not counts:
        return LandscapeView(q, page, len(hits), matching=ordered, next_cursor=cursor)
    modality = Counter(r["modality"] or "none" for r in hits)
    indication = Counter(i for r in hits for i in r["indications"] or ["none"])
    return LandscapeView(
        q,
        page,
        len(hits),
        sorted(modality.items(), key=lambda kv: (-kv[1], kv[0])),
        sorted(indication.items(), key=lambda kv: (-kv[1], kv[0])),
        ordered,
        next_cursor=cursor,
        picture=picture(hits),
        **registry_counts(hits),
    )


def _ranked(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(((k, n) for k, n in counts.items() if n), key=lambda kv: (-kv[1], kv[0]))


def counted(
    q: LandscapeQuery,
    rows: list[dict[str, Any]],
    total: int,
    counts: Mapping[tuple[str, str], int],
    *,
    next_cursor: str | None = None,
) -> LandscapeView:
    """A page with the counts and charts of its whole view, from what the database counted
    of its index (facet, label -> studies: core.summary.IndexEntry's terms): the same
    numbers `view` counts row by row."""

    def of(facet: str) -> dict[str, int]:
        return {label: n for (f, label), n in counts.items() if f == facet}

    named = of("modality")
    by_modality = _ranked({**named, "none": named.get("none", 0) + total - sum(named.values())})
    modalities = _ranked({**named, "not stated": named.get("not stated", 0) + total - sum(named.values())})
    matrix_counts: dict[str, dict[str, int]] = {}
    per_indication: Counter[str] = Counter()
    for pair, n in of("pair").items():
        modality, _, indication = pair.partition("\x1f")
        matrix_counts.setdefault(modality, {})[indication] = n
        per_indication[indication] += n
    by_indication = _ranked(per_indication)
    indications = [i for i, _ in by_indication]
    matrix = {m: {i: matrix_counts.get(m, {}).get(i, 0) for i in indications} for m, _ in modalities}
    statuses = of("status")
    unknown = statuses.get("UNKNOWN", 0) + total - sum(statuses.values())
    years = of("year")
    span = [str(y) for y in range(int(min(years)), int(max(years)) + 1)] if years else []
    picture = Picture(
        [m for m, _ in modalities],
        indications,
        matrix,
        _ranked({**statuses, "UNKNOWN": unknown}),
        [(y, years.get(y, 0)) for y in span],
        _ranked(of("country")),
    )
    return LandscapeView(
        q,
        rows,
        total,
        by_modality,
        by_indication,
        next_cursor=next_cursor,
        picture=picture,
        by_registry=_ranked(of("registry")),
        on_several=sum(of("several").values()),
    )


def registry_counts(hits: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """ "312 studies: 280 on ClinicalTrials.gov, 41 on EU CTIS; 35 on more than one": each
    study counted on every registry it is on (its own registration and those it names)."""
    per: Counter[str] = Counter()
    several = 0
    for r in hits:
        on = {x["registry"] for x in r.get("registrations") or []}
        per.update(on)
        several += len(on) > 1
    return {"by_registry": sorted(per.items(), key=lambda kv: (-kv[1], kv[0])), "on_several": several}


def make_cursor(value: str, nct_id: str) -> str:
    """An opaque, stable place in a sorted list: the last row's sort value and NCT id. A
    row added or removed before it moves nothing: the next page starts after that place."""
    import base64

    return base64.urlsafe_b64encode(f"{value}\x1f{nct_id}".encode()).decode().rstrip("=")


def read_cursor(cursor: str) -> tuple[str, str]:
    import base64
    import binascii

    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        value, nct = raw.split("\x1f")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise UserError(f"cursor: {cursor!r} is not a cursor this server gave") from None
    return value, nct


def _after(value: str, nct: str, c_value: str, c_nct: str, q: LandscapeQuery) -> bool:
    """Whether a row comes after the cursor in `view`'s order (filled values sorted, the
    NCT id breaking ties, empty values last by NCT id)."""
    if value and c_value:
        if value != c_value:
            return value < c_value if q.descending else value > c_value
        return nct > c_nct
    if value or c_value:
        return not value  # empty values come after every filled one
    return nct > c_nct
