"""Reports from real polls of labelled records, on SQLite and PostgreSQL: every format's content,
a self-contained well-formed HTML file, spreadsheet-safe CSV, and the selection flow."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.core.digest import DigestOptions
from monitor.core.filters import StudyFilter
from monitor.publishing import report as reporting
from tests.harness import KYSA_LN, NEW_ID, PEMPHIGUS, World, changes_in_the_registry, edit

SINCE = datetime(2026, 11, 3)


def gather(w: World, flt: StudyFilter | None = None, **kw: Any) -> reporting.Report:
    with w.database.session() as s:
        return reporting.gather(
            s, flt or StudyFilter(), now=w.clock(), since=SINCE, opts=DigestOptions(), **kw
        )


def test_report_content_landscape_changes_new_studies_selection(world: World) -> None:
    changes_in_the_registry(world)
    r = gather(world)
    sel = r.selection
    assert sel.identified == sel.screened == 158 and sel.gone == 0
    assert sel.in_scope == sel.matching == len(r.studies) == 128
    excluded = dict(sel.excluded)
    assert excluded["Oncology only"] >= 1 and sum(excluded.values()) == sel.screened - sel.in_scope
    assert dict(r.by_modality)["CAAR-T"] >= 1 and r.matrix["CAAR-T"]["pemphigus"] >= 1
    assert [s.nct_id for s in r.new_studies] == [NEW_ID]  # first posted in the period
    keys = [s.key for s in r.changes]
    assert keys[:2] == ["new", "status"]
    listed = {b.nct_id for s in r.changes for b in s.blocks}
    assert {PEMPHIGUS, KYSA_LN, NEW_ID} <= listed
    # The first poll (a full sync) reached every study: the starting picture, not changes.
    assert r.change_count == r.change_total < 10
    assert sum(s.events for s in r.changes) == r.change_total


def test_filters_and_comparison_with_the_previous_report(world: World) -> None:
    lupus = StudyFilter(indications=("lupus nephritis",))
    first = gather(world, lupus)
    assert first.selection.previous_at is None
    assert all("lupus nephritis" in s.indications for s in first.studies)

    def repurpose(ps: dict[str, Any]) -> None:
        ps["conditionsModule"]["conditions"] = ["Diffuse Large B-cell Lymphoma"]
        ps["identificationModule"]["briefTitle"] = "Anti-CD19 CAR T Therapy in Large B-cell Lymphoma"

    edit(world.registry, KYSA_LN, repurpose)
    world.poll()
    second = gather(world, lupus)
    assert second.selection.previous_matching == first.selection.matching
    assert second.selection.removed == [KYSA_LN] and second.selection.added == []
    assert second.selection.matching == first.selection.matching - 1
    # The study that left scope still shows in the changes of the readers who followed it.
    leaving = next(s for s in second.changes if s.key == "leaving")
    assert [b.nct_id for b in leaving.blocks] == [KYSA_LN]


class _Html(HTMLParser):
    VOID = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: set[str] = set()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.urls += [v or "" for k, v in attrs if k in ("href", "src")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def test_html_is_one_well_formed_self_contained_file(world: World) -> None:
    changes_in_the_registry(world)
    html = reporting.render(gather(world), "html")
    p = _Html()
    p.feed(html)
    assert not p.errors and not p.stack, (p.errors[:3], p.stack)
    assert not p.tags & {"script", "img", "link", "iframe"}
    assert "svg" in p.tags and "<style>" in html  # charts inline, CSS inline
    assert all(u.startswith("https://clinicaltrials.gov/study/") for u in p.urls)
    assert "@media print" in html
    for text in (
        "Studies per modality",
        "New registrations per year",
        "Status mix",
        "How the studies were selected",
    ):
        assert text in html


def test_markdown_json_and_csv(world: World) -> None:
    changes_in_the_registry(world)
    r = gather(world)
    md = reporting.render(r, "md")
    assert md.startswith("# Cell and antibody therapies in autoimmune disease")
    assert (
        f"[{NEW_ID}](https://clinicaltrials.gov/study/{NEW_ID})" in md
        and "## How the studies were selected" in md
    )
    data = json.loads(reporting.render(r, "json"))
    assert data["selection"]["in_scope"] == 128 and len(data["studies"]) == 128
    rows = list(csv.DictReader(io.StringIO(reporting.render(r, "csv"))))
    assert len(rows) == 128 and rows[0]["nct_id"].startswith("NCT") and "modality" in rows[0]


@pytest.mark.parametrize(
    "value,safe",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("CD19", "CD19"),
    ],
)
def test_csv_cells_cannot_become_formulas(value: str, safe: str) -> None:
    assert reporting.spreadsheet_safe(value) == safe


def test_csv_from_a_hostile_record_is_neutralised(world: World) -> None:
    edit(
        world.registry,
        PEMPHIGUS,
        lambda ps: ps["sponsorCollaboratorsModule"]["leadSponsor"].update(name="=cmd|' /C calc'!A0"),
    )
    world.poll()
    rows = list(csv.DictReader(io.StringIO(reporting.render(gather(world), "csv"))))
    sponsor = next(r["sponsor"] for r in rows if r["nct_id"] == PEMPHIGUS)
    assert sponsor.startswith("'=")


def test_report_command(world: World, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CTMONITOR_DATABASE_URL", world.database.url)
    out = tmp_path / "report.html"
    assert main(["report", "--since", "2026-11-01", "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>") and "wrote html report" in capsys.readouterr().out
    assert main(["report", "--format", "csv", "--modality", "CAAR-T"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["modality"] for r in rows} == {"CAAR-T"}
    assert main(["report", "--modality", "CARX"]) == 2
    err = capsys.readouterr().err
    assert "modalities: unknown value 'CARX'; valid: " in err and "subscriber" not in err
    assert main(["report", "--since", "2026-12-01", "--until", "2026-11-01"]) == 2


def test_a_report_asked_for_on_a_terminal_is_written_to_a_named_file_and_only_kept_ones_are_baselines(
    world: World, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from monitor.cli import reading
    from monitor.store.models import ReportRun

    def kept() -> int:
        with world.database.session() as s:
            return s.scalar(select(func.count()).select_from(ReportRun)) or 0

    monkeypatch.setenv("CTMONITOR_DATABASE_URL", world.database.url)
    monkeypatch.chdir(tmp_path)
    # piped (as here): to standard output, and nothing is kept as the next report's baseline
    assert main(["report", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["selection"] and kept() == 0
    # on a terminal: not 40 KB of Markdown on the screen, but a file it names
    monkeypatch.setattr(reading, "stdout_is_terminal", lambda: True)
    assert main(["report"]) == 0
    out = capsys.readouterr().out.strip()
    first = next(tmp_path.glob("ctmonitor-report-*.md"))
    assert out.startswith(f"wrote md report to {first}: ") and len(out.splitlines()) == 1
    assert main(["report"]) == 0  # a second one never overwrites the first
    assert f"{first.stem}-2.md" in capsys.readouterr().out
    assert kept() == 2


def test_what_changed_groups_a_study_s_many_site_changes_on_one_line(world: World) -> None:
    def more_sites(ps: dict[str, Any]) -> None:
        locs = ps.setdefault("contactsLocationsModule", {}).setdefault("locations", [])
        locs += [{"facility": f"Site {i}", "city": "Berlin", "country": "Germany"} for i in range(6)]
        locs += [{"facility": "Hôpital Necker", "city": "Paris", "country": "France"}]

    edit(world.registry, KYSA_LN, more_sites, posted="2026-11-05", timestamp="2026-11-06T09:00:00")
    world.poll()
    r = gather(world)
    (block,) = [b for s in r.changes for b in s.blocks if b.nct_id == KYSA_LN]
    sites = [c for c in block.changes if c.label == "Sites"]
    assert [c.text for c in sites] == ["7 changes: Germany 6 added; France 1 added"]
    assert not any(c.label == "Site added" for c in block.changes)
    html = reporting.render(r, "html")
    assert "7 changes: Germany 6 added; France 1 added" in html


def test_the_study_table_puts_studies_under_way_first_with_product_enrollment_and_start(world: World) -> None:
    r = gather(world)
    order = [s.status_code for s in r.studies]
    ended = {"COMPLETED", "TERMINATED", "WITHDRAWN"}
    first_ended = next((i for i, s in enumerate(order) if s in ended), len(order))
    assert all(s in ended or s in ("UNKNOWN", "") for s in order[first_ended:])
    assert any(s.product for s in r.studies) and any(s.enrollment for s in r.studies)
    assert any(s.start for s in r.studies)
    rows = list(csv.DictReader(io.StringIO(reporting.render(r, "csv"))))
    assert {"product", "enrollment", "start"} <= set(rows[0])
