"""`ctmonitor feed`: valid Atom (RFC 4287) of the change stream, filtered like a digest, and
stable: regenerating it with nothing new gives the same bytes, and a change keeps its entry id."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.core.filters import StudyFilter
from monitor.publishing import feed as feeds
from tests.harness import KYSA_LN, NEW_ID, PEMPHIGUS, World, changes_in_the_registry

A = "{http://www.w3.org/2005/Atom}"
RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def check_atom(data: bytes) -> ET.Element:
    """The RFC 4287 rules a reader relies on: required elements once each, ids as IRIs, dates RFC 3339."""
    root = ET.fromstring(data)
    assert root.tag == f"{A}feed"
    for tag in ("id", "title", "updated"):
        assert len(root.findall(f"{A}{tag}")) == 1, tag
    assert root.find(f"{A}author/{A}name") is not None  # entries have no author of their own
    datetime.strptime(root.findtext(f"{A}updated") or "", RFC3339)
    ids = []
    for entry in root.findall(f"{A}entry"):
        for tag in ("id", "title", "updated"):
            assert len(entry.findall(f"{A}{tag}")) == 1, tag
        ident = entry.findtext(f"{A}id") or ""
        assert ident.startswith("urn:uuid:")
        ids.append(ident)
        datetime.strptime(entry.findtext(f"{A}updated") or "", RFC3339)
        datetime.strptime(entry.findtext(f"{A}published") or "", RFC3339)
        link = entry.find(f"{A}link[@rel='alternate']")
        assert link is not None and link.get("href", "").startswith("https://")
        content = entry.find(f"{A}content")
        assert content is not None and content.get("type") == "html"
        ET.fromstring(f"<div>{content.text}</div>")  # the escaped HTML is itself well formed
    assert len(ids) == len(set(ids))
    return root


def gather(w: World, flt: StudyFilter | None = None, **kw: Any) -> feeds.Feed:
    with w.database.session() as s:
        return feeds.gather(s, flt or StudyFilter(), study_url=w.settings.digest.study_url, **kw)


def test_the_feed_lists_each_changed_study_once_per_poll(world: World) -> None:
    assert gather(world).entries == []  # the first sync is a baseline, not news
    changes_in_the_registry(world)
    feed = gather(world)
    by_study = {e.nct_id: e for e in feed.entries}
    assert set(by_study) == {PEMPHIGUS, KYSA_LN, NEW_ID}
    assert by_study[PEMPHIGUS].changes[0] == ("Status", "Recruiting → Suspended")
    assert ("Why stopped", "“Manufacturing review”") in by_study[PEMPHIGUS].changes
    assert by_study[NEW_ID].changes[0][0] == "New study"
    root = check_atom(feeds.render(feed))
    assert len(root.findall(f"{A}entry")) == 3
    assert root.findtext(f"{A}title") == "ctmonitor · All changes · studies in scope"


def test_filters_and_kinds_choose_the_entries(world: World) -> None:
    changes_in_the_registry(world)
    lupus = StudyFilter(indications=("lupus nephritis",))
    assert {e.nct_id for e in gather(world, lupus).entries} == {KYSA_LN, NEW_ID}
    status_only = gather(world, kinds=["status_change"])
    assert [e.nct_id for e in status_only.entries] == [PEMPHIGUS]
    assert status_only.title == "ctmonitor · Status · studies in scope"
    assert gather(world, lupus).id != gather(world).id != status_only.id


def test_regenerating_is_stable_and_new_changes_keep_old_ids(world: World) -> None:
    changes_in_the_registry(world)
    first = feeds.render(gather(world))
    assert feeds.render(gather(world)) == first  # nothing new: the same bytes
    old_ids = {e.findtext(f"{A}id") for e in ET.fromstring(first).findall(f"{A}entry")}

    from tests.harness import edit

    def reopen(ps: dict[str, Any]) -> None:
        ps["statusModule"]["overallStatus"] = "RECRUITING"
        ps["statusModule"].pop("whyStopped", None)

    edit(world.registry, PEMPHIGUS, reopen, posted="2026-11-06", timestamp="2026-11-07T09:00:04")
    world.poll()
    second = ET.fromstring(feeds.render(gather(world)))
    new_ids = [e.findtext(f"{A}id") for e in second.findall(f"{A}entry")]
    assert len(new_ids) == 4 and old_ids < set(new_ids)
    assert second.find(f"{A}entry/{A}title").text.endswith("Status: Suspended → Recruiting (+1 more)")


def test_registry_text_cannot_break_the_xml(world: World) -> None:
    from tests.harness import edit

    def hostile(ps: dict[str, Any]) -> None:
        ps["statusModule"]["overallStatus"] = "SUSPENDED"
        ps["statusModule"]["whyStopped"] = "</content><script>alert(1)</script> & <b>\x0b"

    edit(world.registry, PEMPHIGUS, hostile, posted="2026-11-04", timestamp="2026-11-05T09:00:04")
    world.poll()
    data = feeds.render(gather(world))
    root = check_atom(data)
    assert b"<script>" not in data
    assert "alert(1)" in (root.find(f"{A}entry/{A}summary").text or "")


def test_cli_feed_writes_the_file(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    changes_in_the_registry(world)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[database]\nurl = "{world.database.url}"\n')
    out = tmp_path / "lupus.xml"
    args = ["--config", str(cfg), "feed", "--indication", "lupus nephritis", "--out", str(out)]
    assert main([*args, "--self-url", "https://example.org/lupus.xml"]) == 0
    assert "wrote 2 entries" in capsys.readouterr().out
    root = check_atom(out.read_bytes())
    assert root.find(f"{A}link[@rel='self']").get("href") == "https://example.org/lupus.xml"
    assert main(["--config", str(cfg), "feed", "--indication", "lupus nephritis", "--json"]) == 0
    assert '"nct_id": "NCT05938725"' in capsys.readouterr().out
    assert main(["--config", str(cfg), "feed", "--modality", "CAR-X"]) == 2
    assert "modalities: unknown value 'CAR-X'" in capsys.readouterr().err
    assert main(["--config", str(cfg), "feed", "--out", str(tmp_path / "no" / "such" / "dir.xml")]) == 2
    assert "cannot write" in capsys.readouterr().err
