"""`ctmonitor serve --workers N`: the web application built anew in each worker process.

uvicorn starts several processes only from an import string, so each worker builds its
own Application here, from what `serve` put in the environment: the config file
($CTMONITOR_CONFIG), the database ($CTMONITOR_DATABASE_URL) and, for a server on this
machine only, the base URL it took. Everything the workers must agree on lives in the
database they share (PostgreSQL for several machines): subscribers, the link-signing key,
the sign-up rate limits and the curator login's back-off, so a client is counted the
same whichever worker answers it.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette

from monitor.app import Application
from monitor.config import ENV_DB_URL, load_settings
from monitor.publishing.mailer import FolderMailer
from monitor.web.server import WARM_SECONDS, create_app, tune_collector

BASE_URL_ENV = "CTMONITOR_SERVE_BASE_URL"
MAIL_FOLDER_ENV = "CTMONITOR_SERVE_MAIL_FOLDER"


def app_from_environment() -> Starlette:
    settings = load_settings()
    if url := os.environ.get(ENV_DB_URL):
        settings = settings.with_database(url)
    if base := os.environ.get(BASE_URL_ENV):
        settings = settings.model_copy(update={"web": settings.web.model_copy(update={"base_url": base})})
    options = {}
    if folder := os.environ.get(MAIL_FOLDER_ENV):
        options["mailer_factory"] = lambda: FolderMailer(Path(folder))
    asgi = create_app(Application(settings, **options), warm_every=WARM_SECONDS)
    tune_collector()
    return asgi
