"""The demo shows every headline feature: after `make demo`, `make serve` opens sign-up on
this machine, writes the confirmation mail into the demo's folder and prints its link, so
a newcomer can subscribe, confirm and reach their own page in the first minutes. The real
command in a real process, over HTTP on loopback."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from monitor.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, html[:400]
    return found.group(1)


def test_sign_up_works_in_the_demo_with_mail_into_its_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["demo", "--out", str(out)]) == 0
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTMONITOR_")}
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "--db", str(out / "demo.db"), "serve", "--port", str(port),
             "--mail-folder", str(out / "mail")],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        with httpx.Client(timeout=1) as probe:
            while True:
                try:
                    probe.get(base + "/health")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=10) as client:
            form = client.get("/subscribe")
            assert form.status_code == 200 and "Sign-up is off" not in form.text
            before = set((out / "mail").glob("*.eml"))
            sent = client.post(
                "/subscribe",
                data={"csrf": _csrf(form.text), "email": "newcomer@example.org", "indication": "SLE"},
            )
            assert sent.status_code == 200, sent.text
            deadline = time.monotonic() + 10
            while "/confirm/" not in log.read_text():
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            mails = set((out / "mail").glob("*.eml")) - before
            assert len(mails) == 1 and "newcomer@example.org" in mails.pop().name
            link = re.search(rf"{re.escape(base)}/confirm/\S+", log.read_text())
            assert link, log.read_text()
            page = client.get(link.group(0))
            done = client.post(link.group(0), data={"csrf": _csrf(page.text)})
            assert done.status_code == 200 and "You are subscribed" in done.text
            assert "/manage/" in done.text
    finally:
        proc.terminate()
        proc.wait(10)
