"""Where the migrations and templates are: in a checkout, or inside an installed package.

The project keeps `migrations/` and `templates/` at its root (beside `monitor/`). A wheel
ships them inside the package as `monitor/migrations` and `monitor/templates` (see
`[tool.setuptools.package-dir]` in pyproject.toml). The installed copy is preferred: in
site-packages, the folder beside `monitor/` could belong to another distribution.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    installed = PACKAGE_DIR / name
    return installed if installed.is_dir() else PACKAGE_DIR.parent / name


# Shipped data (vocabulary, default queries, demo records) lives in monitor/data/.
DATA_DIR = PACKAGE_DIR / "data"
