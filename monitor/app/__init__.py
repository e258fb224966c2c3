"""The application layer: one object, one method per use case, for every front-end.

The command line, the scheduled service, the demo and the web call `Application`; none
of them orchestrates the core or the store itself. Each method returns a typed result
with `ok`, a human-readable `text()` and `to_json()`, and takes the locks its work needs.
"""

from monitor.app.application import Application
from monitor.app.errors import NotTracked, WorkFailed

__all__ = ["Application", "NotTracked", "WorkFailed"]
