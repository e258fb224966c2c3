"""The digest's content from fixed events (pure), and its rendering against golden files.

Golden files live in tests/golden/; after an intended change of the layout, rebuild them
with `UPDATE_GOLDEN=1 pytest tests/test_digest.py` and review the diff.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from monitor.core.digest import (
    DigestOptions,
    EventView,
    Health,
    StudyView,
    build_changes_digest,
    build_landscape_digest,
)
from monitor.core.domain import UserError
from monitor.core.filters import StudyFilter
from monitor.publishing.render import build_message, render_html, render_text, render_within

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 11, 23, 7, 0)
LAST = datetime(2026, 11, 16, 7, 0)
OPTS = DigestOptions(report_url="https://ctmonitor.example.org/reports/latest.html")
HEALTHY = Health(datetime(2026, 11, 23, 6, 30), "2026-11-23T09:00:04", 412, 412, "ok", NOW, None)


def study(nct: str, **kw: Any) -> StudyView:
    values: dict[str, Any] = {
        "nct_id": nct,
        "brief_title": "Anti-CD19 CAR T Cells in Refractory Systemic Lupus Erythematosus",
        "overall_status": "RECRUITING",
        "phases": "PHASE1|PHASE2",
        "lead_sponsor": "Kyverna Therapeutics",
        "modality": "CAR-T",
        "targets": "CD19",
        "indications": "SLE|lupus nephritis",
        "cell_source": "autologous",
        "in_scope": True,
        "first_post_date": "2024-03-01",
    }
    values.update(kw)
    for name in ("phases", "targets", "indications"):  # written "|"-joined above for brevity
        if isinstance(values[name], str):
            values[name] = tuple(filter(None, values[name].split("|")))
    return StudyView(**values)


STUDIES = {
    "NCT05938725": study("NCT05938725", overall_status="ACTIVE_NOT_RECRUITING"),
    "NCT04422912": study(
        "NCT04422912",
        brief_title="DSG3-CAART for Mucosal-dominant Pemphigus Vulgaris",
        overall_status="SUSPENDED",
        lead_sponsor="Cabaletta Bio",
        modality="CAAR-T",
        targets="DSG3",
        indications="pemphigus",
    ),
    "NCT07799901": study(
        "NCT07799901",
        brief_title="Allogeneic CD19 CAR-NK Cells in Myasthenia Gravis",
        overall_status="NOT_YET_RECRUITING",
        phases="PHASE1",
        lead_sponsor="Example Cell Therapeutics",
        modality="CAR-NK",
        cell_source="allogeneic",
        indications="myasthenia gravis",
        first_post_date="2026-11-18",
    ),
    "NCT03030001": study(
        "NCT03030001", brief_title="An Older CD19 CAR-T Study", first_post_date="2021-02-01"
    ),
    "NCT06359041": study(
        "NCT06359041",
        brief_title="CABA-201 in Myasthenia Gravis",
        lead_sponsor="Cabaletta Bio",
        indications="myasthenia gravis",
    ),
}


def event(i: int, nct: str, kind: str, field: str, before: Any, after: Any, imp: int, **kw: Any) -> EventView:
    return EventView(
        id=i,
        nct_id=nct,
        kind=kind,
        field=field,
        before=before,
        after=after,
        importance=imp,
        registry_date=kw.pop("registry_date", "2026-11-20"),
        detected_at=kw.pop("detected_at", datetime(2026, 11, 21, 10, 0)),
        run_id=kw.pop("run_id", 7),
        **kw,
    )


EVENTS = [
    event(1, "NCT04422912", "status_change", "overall_status", "RECRUITING", "SUSPENDED", 3),
    event(2, "NCT04422912", "why_stopped_change", "why_stopped", None, "Manufacturing review", 3),
    event(
        3,
        "NCT07799901",
        "new_study",
        "study",
        None,
        {"status": "NOT_YET_RECRUITING", "first_posted": "2026-11-18", "phases": ["PHASE1"], "title": "x"},
        3,
        arrival="registered",
    ),
    event(
        4,
        "NCT05938725",
        "enrollment_change",
        "enrollment",
        {"count": 12, "type": "ESTIMATED"},
        {"count": 24, "type": "ACTUAL"},
        2,
    ),
    event(
        5,
        "NCT05938725",
        "date_change",
        "primary_completion_date",
        {"date": "2026-06", "type": "ESTIMATED"},
        {"date": "2027-03", "type": "ESTIMATED"},
        2,
    ),
    event(
        6,
        "NCT06359041",
        "site_added",
        "locations",
        None,
        {"site": "Universitätsklinikum Erlangen, Erlangen, Germany", "status": "RECRUITING"},
        1,
    ),
    event(
        7,
        "NCT06359041",
        "site_status_change",
        "locations",
        {"site": "Stanford, Palo Alto, United States", "status": "NOT_YET_RECRUITING"},
        {"site": "Stanford, Palo Alto, United States", "status": "RECRUITING"},
        2,
    ),
    event(
        8,
        "NCT06359041",
        "status_change",
        "overall_status",
        "NOT_YET_RECRUITING",
        "RECRUITING",
        3,
        versions=(4, 5),
    ),
    event(
        9,
        "NCT03030001",
        "new_study",
        "study",
        None,
        {"status": "RECRUITING", "first_posted": "2021-02-01", "phases": ["PHASE1"], "title": "x"},
        2,  # the caller judged its arrival (core.news): found, so worth knowing
        arrival="found",
    ),
]


def changes(**kw: Any):  # type: ignore[no-untyped-def]
    args: dict[str, Any] = {
        "subscriber": "lupus-team",
        "events": EVENTS,
        "studies": STUDIES,
        "period_start": LAST,
        "now": NOW,
        "health": HEALTHY,
        "filters": "studies in scope",
        "opts": OPTS,
        "max_items": 100,
    }
    args.update(kw)
    return build_changes_digest(**args)


# -- content ------------------------------------------------------------------------------


def test_sections_come_in_order_of_importance_one_block_per_study() -> None:
    d = changes()
    # NCT06359041 opens recruitment and adds a site: one block, under its status change
    assert [s.key for s in d.sections] == ["new", "found", "status", "timeline"]
    status = d.sections[2]
    assert [b.nct_id for b in status.blocks] == ["NCT04422912", "NCT06359041"]
    assert [c.label for c in status.blocks[1].changes] == ["Now recruiting", "Site status", "Site added"]
    listed = [b.nct_id for s in d.sections for b in s.blocks]
    assert len(listed) == len(set(listed))  # each study once
    suspended = status.blocks[0]
    assert [(c.label, c.text) for c in suspended.changes] == [
        ("Suspended", "Recruiting → Suspended"),
        ("Reason given", "“Manufacturing review”"),
    ]
    # Each heading counts the changes listed under it, and each chip is a heading's count:
    # the chips add up to every change.
    assert status.events == 5 == sum(len(b.changes) for b in status.blocks)
    assert d.counts == [
        ("New studies 1", 1),
        ("Newly found (registered earlier) 1", 1),
        ("Status changes 5", 5),
        ("Enrollment, dates and phase 2", 2),
    ]
    assert sum(n for _, n in d.counts) == len(EVENTS)
    for s in d.sections:
        assert s.events == sum(len(b.changes) for b in s.blocks)
    assert d.subject == "[ctmonitor] 1 new study, 2 status changes, 6 other changes · 16 Nov – 23 Nov 2026"
    assert d.listed == d.events == len(EVENTS) and d.omitted == []


def test_a_same_day_period_names_the_day_once() -> None:
    """A digest sent the same day as the last one: "23 Nov 2026", not "23 Nov – 23 Nov 2026"."""
    today = [replace(e, detected_at=NOW.replace(hour=6)) for e in EVENTS]
    d = changes(events=today, period_start=NOW.replace(hour=0, minute=5))
    assert d.subject.endswith(f"· {NOW:%d %b %Y}") and "–" not in d.subject.rpartition("·")[2]
    across_years = changes(period_start=NOW.replace(year=NOW.year - 1))
    assert across_years.subject.endswith(f"{NOW.year - 1} – {NOW:%d %b %Y}")


def test_a_found_study_is_told_apart_from_a_new_one() -> None:
    d = changes()
    new = {b.nct_id: b.changes[0] for b in d.sections[0].blocks}
    found = {b.nct_id: b.changes[0] for b in d.sections[1].blocks}
    assert list(new) == ["NCT07799901"] and new["NCT07799901"].label == "New study"
    assert list(found) == ["NCT03030001"] and found["NCT03030001"].label == "Newly found"
    text = found["NCT03030001"].text
    assert "first posted 2021-02-01; registered before the period; it matches the watch" in text
    assert found["NCT03030001"].importance == 2  # worth knowing, not "act on it"


def test_size_cap_keeps_the_most_important_and_counts_the_rest_by_kind() -> None:
    d = changes(max_items=4)
    assert d.listed == 4
    kinds = {c.kind for s in d.sections for b in s.blocks for c in b.changes}
    assert kinds <= {"status_change", "why_stopped_change", "new_study"}
    assert d.omitted_total == len(EVENTS) - 4
    assert dict(d.omitted)["Site added"] == 1 and dict(d.omitted)["Enrollment"] == 1
    assert d.listed_ids | {e.id for e in EVENTS if e.id not in d.listed_ids} == d.all_ids


def test_version_comparison_link_only_where_both_versions_are_known() -> None:
    d = changes()
    links = {
        c.kind: c.compare_url
        for s in d.sections
        for b in s.blocks
        for c in b.changes
        if b.nct_id == "NCT06359041"
    }
    assert links["status_change"] == (
        "https://clinicaltrials.gov/study/NCT06359041?tab=history&a=4&b=5#version-content-panel"
    )
    assert links["site_added"] is None


def test_health_warnings() -> None:
    failed = Health(
        datetime(2026, 11, 20, 6),
        "2026-11-20T09:00:00",
        412,
        412,
        "failed",
        datetime(2026, 11, 23, 6),
        "HTTP 503 from the registry after 6 attempts",
    )
    text = failed.warning(NOW) or ""
    assert "The last poll (23 Nov 2026 06:00 UTC) failed: HTTP 503" in text and "since 20 Nov 2026" in text
    assert HEALTHY.warning(NOW) is None
    stale = Health(datetime(2026, 11, 1), None, 10, 10, "ok", datetime(2026, 11, 1), None)
    assert "last successful poll was on 01 Nov 2026" in (stale.warning(NOW) or "")
    held = Health(datetime(2026, 11, 23), None, 10, 10, "ok", datetime(2026, 11, 23), None, held_events=40)
    assert "40 changes are held for review" in (held.warning(NOW) or "")
    assert Health(None, None, 0, 0, None, None, None).warning(NOW)
    d = changes(health=failed)
    assert "(poll problem: see top)" in d.subject and d.warning


# -- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flt,expected",
    [
        (StudyFilter(), {"NCT05938725", "NCT04422912", "NCT07799901", "NCT03030001", "NCT06359041"}),
        (StudyFilter(modalities=("caar-t",)), {"NCT04422912"}),
        (StudyFilter(targets=("BCMA",)), {"NCT05938725"}),  # CD19/BCMA names both
        (StudyFilter(indications=("lupus nephritis",)), {"NCT05938725", "NCT03030001"}),
        (StudyFilter(statuses=("RECRUITING",)), {"NCT03030001", "NCT06359041"}),
        (StudyFilter(sponsors=("cabaletta",)), {"NCT04422912", "NCT06359041"}),
        (StudyFilter(countries=("Germany",)), {"NCT06359041"}),
        (StudyFilter(nct_ids=("NCT04422912",)), {"NCT04422912"}),
        (StudyFilter(nct_ids=("NCT04422912",), modalities=("CAR-NK",)), {"NCT04422912", "NCT07799901"}),
        (StudyFilter(modalities=("CAR-T",), indications=("myasthenia gravis",)), {"NCT06359041"}),
    ],
)
def test_filters(flt: StudyFilter, expected: set[str]) -> None:
    class Row:
        def __init__(self, s: StudyView, countries: tuple[str, ...]) -> None:
            self.__dict__.update({k: getattr(s, k) for k in StudyView.__dataclass_fields__})
            self.countries = countries

    rows = [
        Row(s, ("Germany", "United States") if s.nct_id == "NCT06359041" else ("China",))
        for s in STUDIES.values()
    ]
    rows[0].targets = ("CD19/BCMA",)
    assert {r.nct_id for r in rows if flt.matches(r)} == expected


def test_out_of_scope_studies_only_when_asked_or_when_leaving_scope() -> None:
    onc = study("NCT02348216", in_scope=False, indications="")
    assert not StudyFilter().matches(onc)
    assert StudyFilter(include_out_of_scope=True).matches(onc)
    assert StudyFilter().matches(onc, leaving_scope=True)
    assert StudyFilter(nct_ids=("NCT02348216",)).matches(onc)


def test_filter_description_and_unknown_labels() -> None:
    f = StudyFilter(modalities=("CAR-T", "CAAR-T"), indications=("SLE",), statuses=("RECRUITING",))
    assert f.describe() == (
        "studies in scope with modality CAR-T or CAAR-T; indication SLE; current status Recruiting"
    )
    assert StudyFilter(nct_ids=("NCT04422912",)).describe() == "only NCT04422912"
    with pytest.raises(UserError, match="indications: unknown value 'Lupos'; valid: SLE"):
        StudyFilter(indications=("Lupos",)).check_labels(modalities=[], targets=[], indications=["SLE"])
    # an alias stands for the labels it names, where the classifier has them
    lupus = StudyFilter(indications=("Lupus",)).resolved(
        modalities=[], targets=[], indications=["SLE", "lupus nephritis"]
    )
    assert lupus.indications == ("SLE", "lupus nephritis")


# -- rendering --------------------------------------------------------------------------------


class _Checker(HTMLParser):
    """Collects what an email must not contain and checks tags are balanced."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.hrefs: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.hrefs += [v or "" for k, v in attrs if k in ("href", "src")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def check_email_html(html: str) -> _Checker:
    c = _Checker()
    c.feed(html)
    assert not c.errors and not c.stack, (c.errors, c.stack)
    assert not c.tags & {"script", "img", "link", "style", "iframe", "form"}
    assert all(
        h.startswith(("https://clinicaltrials.gov/", "https://ctmonitor.example.org/")) for h in c.hrefs
    )
    return c


def _golden(name: str, content: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(content, encoding="utf-8")
    assert content == path.read_text(encoding="utf-8"), f"{name} differs; UPDATE_GOLDEN=1 to accept"


def test_changes_digest_matches_the_golden_files() -> None:
    d = changes()
    html, text = render_html(d), render_text(d)
    check_email_html(html)
    assert 'style="' in html and "<style" not in html  # CSS inlined
    _golden("digest_changes.html", html)
    _golden("digest_changes.txt", text)


def test_landscape_digest_matches_the_golden_files() -> None:
    d = build_landscape_digest(
        subscriber="lupus-team",
        studies=list(STUDIES.values()),
        event_ids=range(1, 500),
        now=NOW,
        health=HEALTHY,
        filters="studies in scope with indication SLE or lupus nephritis",
        opts=OPTS,
        max_items=50,
    )
    assert d.kind == "landscape" and d.events == 499 and d.listed == 0
    assert [b.nct_id for b in d.landscape.recent] == ["NCT07799901"]  # registered within 30 days
    html, text = render_html(d), render_text(d)
    check_email_html(html)
    _golden("digest_landscape.html", html)
    _golden("digest_landscape.txt", text)


def test_raw_markup_in_any_registry_string_is_escaped() -> None:
    evil = "<script>alert(1)</script><img src=x onerror=y>"
    studies = {
        "NCT04422912": study(
            "NCT04422912", brief_title=evil, lead_sponsor=evil, targets=evil, indications=evil
        )
    }
    events = [event(1, "NCT04422912", "why_stopped_change", "why_stopped", None, evil, 3)]
    d = changes(events=events, studies=studies, filters=evil)
    html = render_html(d)
    check_email_html(html)
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4
    assert evil in render_text(d)


def test_render_within_shrinks_the_list_until_the_html_fits() -> None:
    many = [
        event(
            100 + i, "NCT06359041", "site_added", "locations", None, {"site": f"Site {i}, Berlin, Germany"}, 1
        )
        for i in range(300)
    ]
    r = render_within(lambda n: changes(events=many, max_items=n), 300, 40 * 1024)
    assert r.html_bytes <= 40 * 1024 and 5 <= r.digest.listed < 300
    assert r.digest.listed + r.digest.omitted_total == 300
    assert f"{300 - r.digest.listed} more changes are not listed" in r.text


def test_message_has_both_parts_and_headers() -> None:
    d = changes()
    r = render_within(lambda n: changes(max_items=n), 100, 100 * 1024)
    msg = build_message(
        r,
        to_name="lupus-team",
        to_address="lupus@example.org",
        from_name="ctmonitor",
        from_address="ctmonitor@example.org",
        message_id="<ctmonitor.digest.1.lupus-team@example.org>",
        date=NOW,
        list_unsubscribe="https://ctmonitor.example.org/unsubscribe",
    )
    assert msg["Subject"] == d.subject
    assert msg["List-Unsubscribe"] == "<https://ctmonitor.example.org/unsubscribe>"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_the_landscape_names_every_indication_and_wraps_long_label_lines() -> None:
    """All 15 indication groups, not the first 12 (NMOSD, type 1 diabetes and pemphigus
    were dropped without a word); a long label line in the text part is wrapped."""
    groups = [
        "SLE", "lupus nephritis", "myasthenia gravis", "systemic sclerosis", "myositis / antisynthetase",
        "multiple sclerosis", "rheumatoid arthritis", "Sjögren's", "ANCA vasculitis", "IgG4-RD",
        "AIHA/ITP", "other autoimmune", "NMOSD", "type 1 diabetes", "pemphigus",
    ]  # fmt: skip
    studies = [
        study(
            f"NCT0600{i:04d}",
            indications="|".join(groups[: i % len(groups) + 1]),
            first_post_date="2026-11-20",
        )
        for i in range(40)
    ]
    d = build_landscape_digest(
        subscriber="everything",
        studies=studies,
        event_ids=range(1, 41),
        now=NOW,
        health=HEALTHY,
        filters="studies in scope",
        opts=OPTS,
        max_items=50,
    )
    html, text = render_html(d), render_text(d)
    for name in ("NMOSD", "type 1 diabetes", "pemphigus"):
        assert name in text.split("By indication:")[1].split("REGISTERED")[0]
        assert f">{name.replace(chr(39), '&#39;')}</td>" in html or f">{name}</td>" in html
    assert max(len(line) for line in text.splitlines() if not line.strip().startswith("http")) <= 78


def test_the_footer_promises_the_registry_s_comparison_only_when_a_change_links_to_it() -> None:
    linked = changes()
    assert linked.has_compare and "opens the registry's comparison" in render_text(linked)
    plain = changes(events=[replace(e, versions=(None, None)) for e in EVENTS])
    assert not plain.has_compare
    assert "comparison" not in render_text(plain) and "comparison" not in render_html(plain)


def test_a_trials_changes_read_as_one_block_under_its_standing_registration() -> None:
    """A trial on ClinicalTrials.gov and EU CTIS: a change of its CTIS registration alone is
    listed under the trial's NCT registration, which names the other, and says where it
    came from; a study registered once says nothing of registries."""
    regs = ("ctgov:NCT06189157", "ctis:2024-510663-34-00")
    studies = {
        "NCT06189157": study("NCT06189157", trial_id="NCT06189157", trial_registrations=regs),
        "2024-510663-34-00": study("2024-510663-34-00", trial_id="NCT06189157", trial_registrations=regs),
        "NCT04422912": study("NCT04422912"),
    }
    events = [
        event(1, "2024-510663-34-00", "status_change", "overall_status", "RECRUITING", "COMPLETED", 3),
        event(2, "NCT04422912", "status_change", "overall_status", "RECRUITING", "SUSPENDED", 3),
    ]
    d = changes(events=events, studies=studies)
    blocks = {b.nct_id: b for s in d.sections for b in s.blocks}
    assert set(blocks) == {"NCT06189157", "NCT04422912"}
    trial = blocks["NCT06189157"]
    assert [name for name, _, _ in trial.also] == ["EU CTIS"]
    assert [c.source for c in trial.changes] == ["EU CTIS 2024-510663-34-00"]
    assert [c.source for c in blocks["NCT04422912"].changes] == [""]
    text = render_text(d)
    assert "Also registered as EU CTIS 2024-510663-34-00" in text and "on EU CTIS 2024-510663-34-00" in text
