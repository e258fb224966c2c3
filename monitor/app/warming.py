"""Keeping the most read views ready: after a poll commits, the first reader of the
landscape, the products page or the feed would wait while every match is counted again
(over 100,000 studies, seconds). A web process counts them itself, in the background, as
soon as the studies or the change log move (the counts are cached per version:
app.browse.per_version), so readers find them counted."""

from __future__ import annotations

import logging
import threading
from typing import Any

from monitor.core.filters import StudyFilter
from monitor.core.landscape import LandscapeQuery

log = logging.getLogger(__name__)


class WarmingUseCases:
    """Mixed into Application (landscape, pipeline, feed and check_filter)."""

    def landscape(self, query: LandscapeQuery) -> Any:  # pragma: no cover
        raise NotImplementedError

    def pipeline(self, query: LandscapeQuery) -> Any:  # pragma: no cover
        raise NotImplementedError

    def feed(self, flt: StudyFilter, **kw: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def check_filter(self, flt: StudyFilter) -> StudyFilter:  # pragma: no cover
        raise NotImplementedError

    def warm(self) -> None:
        """Count what the landing pages show, as their routes ask without parameters (the
        landscape with its charts, the products page, the feed): nothing when nothing moved
        since the last time (each is cached per version). Reads only."""
        default = LandscapeQuery.from_params({})
        self.landscape(default)
        self.pipeline(default)
        self.feed(self.check_filter(StudyFilter()), kinds=[], limit=100)


class Warmer:
    """A daemon thread that calls `app.warm()` every `every` seconds until stopped; a
    failure (the database away for a moment) is logged and tried again next time."""

    def __init__(self, app: WarmingUseCases, every: float) -> None:
        self._app = app
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ctmonitor-warm", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._app.warm()
            except Exception as exc:  # a reader's request would meet the same and say so
                log.warning("could not count the landing pages ahead of readers: %s", exc)
            self._stop.wait(self._every)
