"""ctmonitor in the browser: `ctmonitor serve` (Starlette under uvicorn).

Server-rendered pages from the Jinja2 templates in templates/web, one stylesheet, no
script; every page's state is in its URL. The pages and the JSON API read through the
application layer (`monitor.app.Application`), as the CLI does; nothing here touches
the store or the core directly.
"""

from monitor.web.server import create_app

__all__ = ["create_app"]
