"""Classifier benchmark: precision and recall on the labelled set, and throughput.

    .venv/bin/python bench/classify.py

Scope, modality and indication groups are scored against tests/data/domain/labelled.csv
(indication groups against the groups the labelled conditions name, read with the same
vocabulary: a check of the indication logic, not of the vocabulary itself). Throughput
is measured on 10,000 records (the labelled records, repeated).
Targets (issue 3): no in-scope study missed, no out-of-scope study in scope; well under
a second per thousand records.
"""

from __future__ import annotations

import csv
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.classify import Classifier  # noqa: E402
from monitor.localapi import load_records  # noqa: E402
from monitor.normalize import to_study  # noqa: E402

DATA = ROOT / "tests" / "data" / "domain"


def prf(tp: int, fp: int, fn: int) -> str:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return f"precision {p:5.2f}  recall {r:5.2f}  (tp {tp}, fp {fp}, fn {fn})"


def main() -> None:
    labels = {r["nct_id"]: r for r in csv.DictReader((DATA / "labelled.csv").open(encoding="utf-8"))}
    studies = [to_study(r) for r in load_records(DATA / "records.jsonl")]
    clf = Classifier()
    results = {s.nct_id: clf.classify(s) for s in studies}

    tp = fp = fn = tn = 0
    for nct, c in results.items():
        want = labels[nct]["in_scope"] == "yes"
        tp += c.in_scope and want
        fp += c.in_scope and not want
        fn += want and not c.in_scope
        tn += not want and not c.in_scope
    in_scope = sum(labels[n]["in_scope"] == "yes" for n in results)
    print(f"labelled records with a record: {len(results)} ({in_scope} in scope)")
    print(f"{'scope':<28} {prf(tp, fp, fn)}  missed in-scope: {fn}, wrongly in scope: {fp}")

    counts: Counter[tuple[str, str]] = Counter()
    modalities = sorted({labels[n]["modality"] for n in results if labels[n]["modality"]})
    for nct, c in results.items():
        want = labels[nct]["modality"] if labels[nct]["in_scope"] == "yes" else ""
        got = c.modality if c.in_scope else ""
        for m in modalities:
            counts[(m, "tp")] += got == m and want == m
            counts[(m, "fp")] += got == m and want != m
            counts[(m, "fn")] += want == m and got != m
    for m in modalities:
        print(f"{'modality ' + m:<28} {prf(counts[(m, 'tp')], counts[(m, 'fp')], counts[(m, 'fn')])}")

    vocab = clf.vocabulary
    group_counts: Counter[tuple[str, str]] = Counter()
    for nct, c in results.items():
        if labels[nct]["in_scope"] != "yes":
            continue
        want = {
            v
            for cond in labels[nct]["conditions"].split(";")
            for k, v, _ in vocab.find(cond)
            if k == "indication"
        }
        if len(want) > 1 and "other autoimmune" in want:
            want.discard("other autoimmune")
        got = set(c.indications)
        for g in want | got:
            group_counts[(g, "tp")] += g in want and g in got
            group_counts[(g, "fp")] += g in got and g not in want
            group_counts[(g, "fn")] += g in want and g not in got
    for g in vocab.indication_order:
        if any(group_counts[(g, k)] for k in ("tp", "fp", "fn")):
            scores = prf(group_counts[(g, "tp")], group_counts[(g, "fp")], group_counts[(g, "fn")])
            print(f"{'indication ' + g:<28} {scores}")

    batch = (studies * (10000 // len(studies) + 1))[:10000]
    t0 = time.perf_counter()
    for s in batch:
        clf.classify(s)
    seconds = time.perf_counter() - t0
    per_record = seconds / len(batch)
    print(
        f"throughput: {len(batch) / seconds:,.0f} records/s ({per_record * 1e6:.0f} us per record, "
        f"{per_record * 1000:.2f} s per thousand)"
    )


if __name__ == "__main__":
    main()
