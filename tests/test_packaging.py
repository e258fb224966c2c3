"""An installed wheel, not only a checkout, carries the migrations and the templates.

`migrations/` and `templates/` live at the project root; pyproject.toml maps them into
the package so that `pip install .` gives a working `ctmonitor`. Built offline (no build
isolation) from a copy of the project, installed into a folder, asked where it looks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _shipped(folder: str) -> set[str]:
    base = ROOT / folder
    return {
        f"monitor/{folder}/{p.relative_to(base).as_posix()}"
        for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_the_wheel_ships_migrations_and_templates_and_uses_them(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("monitor", "migrations", "templates"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"), "."],
        cwd=src,
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("ctmonitor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert _shipped("migrations") <= names
    assert _shipped("templates") <= names
    assert "monitor/data/vocabulary.toml" in names

    site = tmp_path / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import json, monitor.store.db as db, monitor.publishing.render as render;"
        "print(json.dumps([str(db.MIGRATIONS_DIR), str(render.TEMPLATES_DIR), db.head_revision()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
    )
    migrations, templates, head = json.loads(out.stdout)
    assert Path(migrations) == site / "monitor" / "migrations"
    assert Path(templates) == site / "monitor" / "templates"
    from monitor.store.db import head_revision

    assert head == head_revision()
