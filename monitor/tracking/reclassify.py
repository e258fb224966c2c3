"""Relabel studies from their stored raw records, without fetching anything: after a
vocabulary, overrides or normalizer change (a poll does it first), or on demand.
"""

from __future__ import annotations

from datetime import datetime

from monitor import store
from monitor.core.classify import Classifier
from monitor.core.decide import scope_change
from monitor.core.normalize import (
    content_hash,
)
from monitor.store.db import Database


def reclassify(
    db: Database, classifier: Classifier, *, run_id: int | None, now: datetime, only_stale: bool
) -> tuple[int, int]:
    """Relabel studies from their stored raw records, without fetching anything.

    Returns (studies relabelled, scope events). `only_stale` limits it to studies labelled
    with another vocabulary/overrides/normalizer version. The row's normalized columns and
    content hash are re-derived too, so a better normalizer repairs what was stored
    before; that makes no field events (our cleaning changed, not the study). A study that
    moves into or out of scope does make a scope event (origin "reclassify"), since what
    users see changed.
    """
    with db.session() as s:
        todo = store.stale_classifications(s, classifier.version if only_stale else None)
    done = events = 0
    for start in range(0, len(todo), 200):
        batch = todo[start : start + 200]
        with db.session() as s:
            studies = store.stored_studies(s, [(nct, seq) for nct, seq, _ in batch])
            for nct, _, before in batch:
                study = studies.get(nct)
                if study is None:
                    continue
                label = classifier.classify(study)
                store.set_classification(
                    s,
                    nct,
                    store.classification_values(label, classifier.version)
                    | store.study_columns(study, content_hash(study)),
                )
                changes = scope_change(before, label)
                if changes:
                    store.add_events(
                        s,
                        nct,
                        changes,
                        run_id=run_id,
                        now=now,
                        registry_date=study.last_update_post_date,
                        origin="reclassify",
                    )
                    events += len(changes)
                done += 1
    return done, events
