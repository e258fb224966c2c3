"""A record as a `Study`, read by the decoder of the registry it came from. Pure.

The store keeps each registry's records as the registry sent them and re-reads them
whenever a study is compared, relabelled or shown; this is the one place that knows which
decoder reads which (by the registration number's format), so the rest of ctmonitor
handles every registry's studies alike.
"""

from __future__ import annotations

from monitor.core import ctis
from monitor.core.domain import Study
from monitor.core.normalize import to_study
from monitor.core.registrations import registry_of


def study_of(number: str, raw: bytes) -> Study:
    """The study of a record whose registration is `number`, as stored or fetched."""
    if registry_of(number) == "ctis":
        return ctis.from_bytes(raw)
    return to_study(raw)
