"""Digests through other channels (Apprise): a generic JSON webhook and a Slack-shaped
incoming webhook (Mattermost's, which Slack's format is) served on loopback. The same
exactly-once bookkeeping as e-mail: a receiver that fails leaves the events due, the
next run delivers them once, a sent digest never repeats; secrets come from the
environment and are never shown back."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from monitor import store
from monitor.config import SubscriberSettings
from monitor.publishing import delivery
from monitor.publishing.channels import ChannelError, ChannelSender, masked
from tests.harness import PEMPHIGUS, World, changes_in_the_registry

TOKEN = "s3cr3t-hook-token-4f9a"


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that answers 500 to the first `fail` posts, then 200."""

    def __init__(self, fail: int = 0) -> None:
        self.fail, self.posts, self.refused = fail, [], 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.fail > 0:
                    outer.fail -= 1
                    outer.refused += 1
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        serve = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        serve.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _with_channels(world: World, receiver: Receiver) -> None:
    world.settings = world.settings.model_copy(
        update={
            "subscribers": [
                SubscriberSettings(
                    name="team-webhook",
                    email="team@example.org",
                    indications=["pemphigus"],
                    channel=f"json://127.0.0.1:{receiver.port}/ctmonitor/${{HOOK_TOKEN}}",
                ),
                SubscriberSettings(
                    name="team-chat",
                    email="chat@example.org",
                    channel=f"mmost://127.0.0.1:{receiver.port}/${{HOOK_TOKEN}}",
                ),
            ]
        }
    )


def test_a_receiver_that_fails_then_recovers_gets_each_digest_exactly_once(
    world: World, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", TOKEN)
    _with_channels(world, receiver)
    first = {o.subscriber: o for o in world.send()}
    assert {o.status for o in first.values()} == {"sent"} and len(receiver.posts) == 2
    webhook = next(body for path, body in receiver.posts if path.startswith("/ctmonitor/"))
    assert webhook["title"].startswith("[ctmonitor] Your starting picture")
    assert "pemphigus" in webhook["message"].lower()
    chat = next(body for path, body in receiver.posts if path == f"/hooks/{TOKEN}")
    assert "text" in chat  # the Slack-shaped payload

    changes_in_the_registry(world)  # the pemphigus study is suspended
    receiver.fail = 10**6  # the receiver is down
    down = {o.subscriber: o for o in world.send()}
    assert {o.status for o in down.values()} == {"failed"} and receiver.refused >= 2
    assert TOKEN not in " ".join(str(o.error) for o in down.values())
    with world.database.session() as s:
        states = {x.name: x for x in delivery.subscriber_states(s, world.settings)}
    assert states["team-webhook"].pending > 0 and TOKEN not in states["team-webhook"].channel
    assert states["team-webhook"].channel == f"json://127.0.0.1:{receiver.port}/…"

    receiver.fail = 0  # back up: each digest arrives once
    posted = len(receiver.posts)
    again = {o.subscriber: o.status for o in world.send()}
    assert again == {"team-webhook": "sent", "team-chat": "sent"}
    new = receiver.posts[posted:]
    assert len(new) == 2 and all(PEMPHIGUS in json.dumps(body) for _, body in new)
    assert {o.status for o in world.send()} == {"nothing-due"}  # and never again
    assert len(receiver.posts) == posted + 2


def test_a_missing_secret_fails_the_delivery_and_keeps_its_events(
    world: World, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOOK_TOKEN", raising=False)
    _with_channels(world, receiver)
    out = {o.subscriber: o for o in world.send()}
    assert out["team-webhook"].status == "failed" and "HOOK_TOKEN" in str(out["team-webhook"].error)
    assert not receiver.posts
    with world.database.session() as s:
        assert store.last_sent_digest(s, "team-webhook") is None
    monkeypatch.setenv("HOOK_TOKEN", TOKEN)
    assert {o.status for o in world.send()} == {"sent"}


def test_channel_urls_are_never_shown_whole() -> None:
    assert masked("slack://T000/B000/XXXXXXXX/#trials") == "slack://…/…"
    assert masked("json://user:pw@hooks.example.org/path") == "json://hooks.example.org/…"
    assert masked("msteams://${TEAMS}/") == "msteams://…/…"
    assert masked("") == "e-mail"
    with pytest.raises(ChannelError, match="not understand"):
        ChannelSender().send("nonsense://", title="t", body="b")
