"""How a result's text marks emphasis: plain by default; the CLI passes click.style."""

from __future__ import annotations

from typing import Any, Protocol


class Style(Protocol):
    def __call__(self, text: str, **marks: Any) -> str: ...


def plain(text: str, **_marks: Any) -> str:
    """No marks: for files, mail and tests."""
    return text
