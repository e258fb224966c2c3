"""Results of the use cases that publish: a report and a feed, as documents, optionally
written to a file (atomically, so a web server never serves half of one)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.core.describe import count
from monitor.core.domain import UserError


def write_atomically(target: Path, data: bytes) -> None:
    """Replace `target` with `data` in one step (a temporary file beside it, then rename)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class ReportResult:
    report: Any  # report.Report
    fmt: str
    document: str
    written_to: Path | None = None
    ok: bool = True

    def text(self) -> str:
        if self.written_to is None:
            return self.document
        return (
            f"wrote {self.fmt} report to {self.written_to}: "
            f"{count(self.report.selection.matching, 'study')}, {count(self.report.change_total, 'change')} "
            f"{self.report.since:%Y-%m-%d} to {self.report.until:%Y-%m-%d}"
        )

    def to_json(self) -> Any:
        import json

        from monitor.publishing import report as reporting

        return json.loads(reporting.to_json(self.report))


@dataclass(frozen=True)
class FeedResult:
    feed: Any  # feed.Feed
    document: bytes
    written_to: Path | None = None
    ok: bool = True

    def text(self) -> str:
        if self.written_to is None:
            return self.document.decode("utf-8")
        return f"wrote {len(self.feed.entries)} entries to {self.written_to} ({self.feed.title})"

    def to_json(self) -> Any:
        from monitor.publishing import feed as feeds

        return feeds.as_json(self.feed)
