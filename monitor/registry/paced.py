"""One way of asking a public web service for data, politely and patiently (httpx).

Every service ctmonitor reads (the registry, PubMed's E-utilities, Europe PMC) is asked
the same way: a client-side minimum interval between requests, as each service asks; one
retry rule (transport errors, timeouts, 429 honouring Retry-After within a cap, 5xx, and
bodies that are not what they claim to be, retried with exponential backoff and full
jitter inside a total time budget; every other 4xx fails at once); bodies read as a
stream. Sleep and clock are injectable, so tests count calls without ever sleeping.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from monitor.registry.answers import (
    ApiForbidden,
    ApiHTTPError,
    ApiNotFound,
    RetriesExhausted,
    WebPageAnswer,
    _error_detail,
    _Retryable,
    parse_json,
    parse_retry_after,
)
from monitor.settings_base import Pacing


@cache
def _tls() -> ssl.SSLContext:
    """httpx's own default TLS settings (certifi's roots, or SSL_CERT_FILE / SSL_CERT_DIR),
    built once per process: loading the roots costs ~30 ms, and a client is made per run."""
    return httpx.create_ssl_context()


class RateLimiter:
    """At least `interval` seconds between the starts of two requests."""

    def __init__(self, interval: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.interval, self.clock, self.sleep = interval, clock, sleep
        self._last: float | None = None

    def wait(self) -> None:
        if self.interval > 0 and self._last is not None:
            delay = self._last + self.interval - self.clock()
            if delay > 0:
                self.sleep(delay)
        self._last = self.clock()


class PacedClient:
    """The request loop every service client shares; subclasses add the endpoints."""

    def __init__(
        self,
        pacing: Pacing,
        *,
        base_url: str,
        headers: dict[str, str],
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        min_interval: float | None = None,
        expect: str = "json",
    ) -> None:
        self.pacing = pacing
        self._sleep, self._clock = sleep, clock
        self._rng = rng or random.Random()
        self._expect = expect  # what the content type of a good answer contains
        self._http = httpx.Client(
            base_url=base_url,
            timeout=pacing.timeout_seconds,
            headers=headers,
            follow_redirects=True,
            transport=transport,
            verify=_tls(),
        )
        interval = pacing.min_interval_seconds if min_interval is None else min_interval
        self._limiter = RateLimiter(interval, clock, sleep)
        self.requests = 0  # HTTP requests actually sent, retries included

    def close(self) -> None:
        self._http.close()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the one retry rule ------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        s = self.pacing
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, s.max_retry_after_seconds)
        ceiling = min(s.backoff_max_seconds, s.backoff_base_seconds * 2 ** (state.attempt_number - 1))
        return self._rng.uniform(0, ceiling)

    def _request_json(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        web: bool = False,
        decode: Callable[[bytes], Any] = parse_json,
        expect: str | None = None,
        body: Any = None,
    ) -> Any:
        """GET `path` (POST `body` as JSON, when given) and return the answer as `decode`
        reads it, retrying what is worth retrying; `decode` raises ValueError for a body
        that is malformed or cut short.

        `web`: an endpoint of the registry's web site (the record history), where a web
        page answered with 200 means the data is refused, not a passing fault. `expect`:
        what a good answer's content type contains ("json", "xml")."""
        started = self._clock()
        attempts = 0
        last_error: list[str] = [""]

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.pacing.max_attempts:
                return True
            upcoming = state.upcoming_sleep or 0.0
            return self._clock() - started + upcoming > self.pacing.retry_budget_seconds

        retrying = Retrying(
            retry=retry_if_exception_type(_Retryable),
            wait=self._wait,
            stop=stop,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    try:
                        return self._send_once(path, params, web, decode, expect or self._expect, body)
                    except _Retryable as exc:
                        last_error[0] = str(exc)
                        raise
        except _Retryable:
            elapsed = self._clock() - started
            raise RetriesExhausted(
                f"gave up on {path} after {attempts} attempt(s) in {elapsed:.0f}s: {last_error[0]}"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(
        self,
        path: str,
        params: dict[str, str] | None,
        web: bool = False,
        decode: Callable[[bytes], Any] = parse_json,
        expect: str = "json",
        body: Any = None,
    ) -> Any:
        self._limiter.wait()
        self.requests += 1
        method = "GET" if body is None else "POST"
        try:
            with self._http.stream(method, path, params=params, json=body) as response:
                body = self._body(response, web, expect)
        except httpx.TimeoutException as exc:
            raise _Retryable(f"timeout ({type(exc).__name__})") from None
        except httpx.TransportError as exc:  # also a body cut short (RemoteProtocolError)
            raise _Retryable(f"connection failed ({type(exc).__name__}: {exc})") from None
        try:
            return decode(body)
        except (ValueError, UnicodeDecodeError, SyntaxError) as exc:  # XML errors are SyntaxErrors
            raise _Retryable(f"malformed or truncated {expect.upper()} ({exc})") from None

    @staticmethod
    def _body(response: httpx.Response, web: bool = False, expect: str = "json") -> bytes:
        """The body of a 200 answer of the expected type, or the error the status calls for.

        The body is read as a stream and joined here, not kept on the response: httpx's
        response and its stream refer to each other, so a response lives until the
        garbage collector runs, and during a poll that is rarely (monitor.gc_relax).
        """
        status = response.status_code
        if status != 200:
            response.read()  # error bodies are short; _error_detail reads them
            url = str(response.request.url.copy_with(query=None))
            if status == 429 or status >= 500:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                raise _Retryable(f"HTTP {status}: {_error_detail(response)}".rstrip(": "), retry_after)
            if status == 403:
                raise ApiForbidden(status, url, _error_detail(response))
            if status == 404:
                raise ApiNotFound(status, url, _error_detail(response))
            raise ApiHTTPError(status, url, _error_detail(response))
        ctype = response.headers.get("content-type", "")
        if expect not in ctype:
            if web and "html" in ctype:
                response.read()
                url = str(response.request.url.copy_with(query=None))
                raise WebPageAnswer(200, url, _error_detail(response)[:120])
            raise _Retryable(f"expected {expect.upper()}, got {ctype or 'no content type'}")
        return b"".join(response.iter_bytes())
