"""A record as a `Study`, read by the decoder of the registry it came from. Pure.

The store keeps each registry's records as the registry sent them and re-reads them
whenever a study is compared, relabelled or shown; this is the one place that knows which
decoder reads which (by the registration number's format), so the rest of ctmonitor
handles every registry's studies alike.
"""

from __future__ import annotations

from monitor.core import ctis, ictrp
from monitor.core.domain import Study
from monitor.core.normalize import to_study
from monitor.core.registrations import registry_of


def study_of(number: str, raw: bytes) -> Study:
    """The study of a record whose registration is `number`, as stored or fetched."""
    registry = registry_of(number)
    if registry == "ctis":
        return ctis.from_bytes(raw)
    if registry != "ctgov":
        return ictrp.from_bytes(raw)  # the other registries' records come from ICTRP exports
    return to_study(raw)
