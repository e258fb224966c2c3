"""`ctmonitor serve --workers N`: several processes over one database answer as one site.
Everything they must agree on lives in the database: the link-signing key (a form token
from one worker is good at another), the curator login's back-off and the sign-up rate
limits (a client is counted the same whichever worker answers). PostgreSQL, the shared
deployment; real processes, real HTTP on loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.store.db import open_database
from tests.smtp import free_port

PASSWORD = "correct horse battery staple"


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[str]:
    open_database(db_url, auto_upgrade=True).dispose()
    port = free_port()
    env = {
        **os.environ,
        "CTMONITOR_ADMIN_PASSWORD": PASSWORD,
        "CTMONITOR_CONFIG": str(tmp_path / "none.toml"),
    }
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "--db", db_url, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=2) as probe:
        while time.monotonic() < deadline:
            try:
                if probe.get(base + "/favicon.ico").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            proc.kill()
            pytest.fail("the workers did not start: " + proc.communicate()[1][-800:])
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_workers_share_the_login_back_off_and_the_form_keys(site: str) -> None:
    # no keep-alive: every request is a new connection, which the kernel may hand to either
    # worker; the client keeps its cookies (the form's double-submit token) across them
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=site, timeout=10, limits=fresh) as client:

        def sign_in(password: str) -> httpx.Response:
            page = client.get("/admin/login")  # the form's key, from whichever worker
            token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
            assert token, page.text[:300]
            return client.post(
                "/admin/login", data={"csrf": token.group(1), "password": password}, follow_redirects=False
            )

        failed = sign_in("wrong")
        assert failed.status_code in (401, 429)
        # after a failure the next tries wait, whatever the password, whichever worker
        # answers: a worker keeping its own count would let the right password in
        for _ in range(6):
            r = sign_in(PASSWORD)
            assert r.status_code == 429 and "heard in" in r.text, r.status_code
        time.sleep(2.5)  # the wait over, the right password is heard
        assert sign_in(PASSWORD).status_code == 303
        assert client.get("/health").status_code in (200, 503)
