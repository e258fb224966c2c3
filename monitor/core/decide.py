"""The poll's decision for one fetched record, as a pure function.

A poll reads the stored state of a page's studies, decides each record here, then writes
the whole page in one transaction (monitor.tracking.sync). Keeping the rules apart from
the reads and the writes means each rule can be stated as a row of a table
(tests/test_decide.py), and the end-to-end sync scenarios only check the plumbing.

The rules, in the order they apply:
- a record whose bytes hash as stored, in the same query membership, not gone: untouched;
- an id we do not track: a new study, unless it lists a tracked id as an alias, in which
  case the study was renumbered: one `id_changed` event plus its field changes;
- otherwise the field changes against the stored version (only re-read when the content
  hash moved; parts of the record first fetched now are a baseline, not changes), a
  scope change, `restored` for a study that had gone, `left_query` /
  `rejoined_query` when the query membership flipped; a new snapshot only when the bytes
  moved (a membership flip alone keeps the snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.core.classify import Classification
from monitor.core.diff import diff, new_study_change
from monitor.core.domain import EventKind, FieldChange, Study
from monitor.core.protocol import FIELDS_VERSION, unknown_families


@dataclass(frozen=True, slots=True)
class CurrentState:
    """What the decision needs to know about a stored study (read in bulk per page)."""

    nct_id: str
    content_hash: str
    raw_hash: str
    snapshot_count: int
    in_query: bool
    gone: bool
    merged_into: str | None
    overall_status: str | None
    last_update_post_date: str | None
    in_scope: bool | None
    fields_version: int = FIELDS_VERSION  # the field list its latest record was fetched with


def untouched(prev: CurrentState | None, raw_hash: str, in_query: bool) -> bool:
    """The record is byte-for-byte what we hold, reached the same way: nothing to do (not
    even normalizing it, which is why the sync asks this before anything else)."""
    return prev is not None and raw_hash == prev.raw_hash and prev.in_query == in_query and not prev.gone


@dataclass(slots=True)
class Incoming:
    """One fetched record with its hashes and what is stored for it."""

    study: Study
    blob: bytes
    rhash: str
    chash: str
    prev: CurrentState | None  # the stored study under this id
    merged_from: CurrentState | None  # a tracked study this new id lists as an alias

    @property
    def base(self) -> CurrentState:
        """The stored study this record is compared with (itself, or the id it replaces)."""
        base = self.prev or self.merged_from
        assert base is not None
        return base

    @property
    def needs_previous(self) -> bool:
        """Whether the decision needs the stored version (re-normalized from its raw record)."""
        if self.prev is not None:
            return self.chash != self.prev.content_hash
        return self.merged_from is not None


def match(study: Study, blob: bytes, rhash: str, chash: str, current: dict[str, CurrentState]) -> Incoming:
    """Pair a record with its stored study, or with the tracked study it was renumbered from."""
    prev = current.get(study.nct_id)
    merged_from = None
    if prev is None:
        merged_from = next(
            (current[a] for a in study.aliases if a in current and current[a].merged_into is None), None
        )
    return Incoming(study, blob, rhash, chash, prev, merged_from)


@dataclass(slots=True)
class Decision:
    """What to write for one record."""

    is_new: bool  # a new study row (a new id, renumbered or not)
    snapshot_seq: int | None  # the new snapshot's number; None: keep the snapshot we have
    changes: list[FieldChange] = field(default_factory=list)
    merges: str | None = None  # the tracked id this record replaces (mark it merged)
    # field families recorded as they are, without events: the stored record was fetched
    # before ctmonitor asked for them (monitor.core.protocol.unknown_families)
    baseline: frozenset[str] = frozenset()


def baseline_for(base: CurrentState, previous: Study) -> frozenset[str]:
    """The families the stored version cannot know: none once it was fetched with today's
    field list; otherwise those whose module its record does not carry."""
    if base.fields_version >= FIELDS_VERSION:
        return frozenset()
    return unknown_families(previous, base.fields_version)


def scope_change(before: bool | None, label: Classification) -> list[FieldChange]:
    """An event when a study moves into or out of scope (nothing on first classification)."""
    if before is None or before == label.in_scope:
        return []
    kind = EventKind.ENTERED_SCOPE if label.in_scope else EventKind.LEFT_SCOPE
    after = {
        "in_scope": label.in_scope,
        "reason": label.scope_reason,
        "modality": label.modality,
        "targets": label.target_label,
        "indications": ", ".join(label.indications),
    }
    return [FieldChange(kind, "scope", before={"in_scope": before}, after=after)]


def decide(
    item: Incoming, previous: Study | None, label: Classification, *, in_query: bool
) -> Decision | None:
    """The decision for one record. `previous` is the stored version of `item.base`, given
    when `item.needs_previous`; `label` is the record's classification. None: untouched."""
    study, prev = item.study, item.prev
    if prev is None:
        old = item.merged_from
        if old is None:
            return Decision(is_new=True, snapshot_seq=1, changes=[new_study_change(study, label)])
        assert previous is not None, "a renumbered study is compared with the one it replaces"
        baseline = baseline_for(old, previous)
        changes = [FieldChange(EventKind.ID_CHANGED, "nct_id", before=old.nct_id, after=study.nct_id)]
        changes += diff(previous, study, baseline=baseline)
        changes += scope_change(old.in_scope, label)
        return Decision(is_new=True, snapshot_seq=1, changes=changes, merges=old.nct_id, baseline=baseline)
    if untouched(prev, item.rhash, in_query):
        return None
    changes = []
    baseline: frozenset[str] = frozenset()
    if item.needs_previous:
        assert previous is not None, "a moved content hash is compared with the stored version"
        baseline = baseline_for(prev, previous)
        changes = diff(previous, study, baseline=baseline)
    changes += scope_change(prev.in_scope, label)
    if prev.gone:
        changes.append(FieldChange(EventKind.RESTORED, "registry", before=None, after=study.overall_status))
    if prev.in_query and not in_query:
        changes.append(FieldChange(EventKind.LEFT_QUERY, "query", before=True, after=False))
    elif in_query and not prev.in_query:
        changes.append(FieldChange(EventKind.REJOINED_QUERY, "query", before=False, after=True))
    seq = prev.snapshot_count + 1 if item.rhash != prev.raw_hash else None
    return Decision(is_new=False, snapshot_seq=seq, changes=changes, baseline=baseline)
