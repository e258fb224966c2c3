"""Settings: the shipped config.toml is the documented defaults; every mistake is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Settings, load_settings
from monitor.core.domain import UserError

ROOT = Path(__file__).parent.parent


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_config_equals_the_built_in_defaults() -> None:
    shipped = load_settings(ROOT / "config.toml")
    assert shipped.model_dump() == Settings().model_dump()


def test_every_default_key_is_documented_in_config_toml() -> None:
    text = (ROOT / "config.toml").read_text()
    for section, model in Settings().model_dump().items():
        if isinstance(model, dict):
            assert f"[{section}]" in text
            for key in model:
                assert f"\n{key} = " in text, f"{section}.{key} is not in config.toml"


@pytest.mark.parametrize(
    "text,message",
    [
        ("[api]\npagesize = 10\n", "api.pagesize: unknown key"),
        ("[api]\npage_size = 5000\n", "api.page_size: Input should be less than or equal to 1000"),
        ("[api]\npage_size = 'many'\n", "api.page_size"),
        ("[api]\nbase_url = 'clinicaltrials.gov'\n", "api.base_url: must be an http(s) URL"),
        ("[database]\nurl = 'postgresql://u:secret@h/db'\n", "CTMONITOR_DATABASE_PASSWORD"),
        ("[database]\nurl = 'mysql://h/db'\n", "database.url"),
        ("[[queries]]\nname = 'x'\n", "needs at least one of"),
        ("[[queries]]\nname = 'x'\nids = ['NCT123']\n", "not an NCT id"),
        ("[[queries]]\nname = 'x'\nterm = 'a'\n[[queries]]\nname = 'x'\nterm = 'b'\n", "repeated: x"),
        ("[sync\n", "not valid TOML"),
        # types are strict: a boolean is not a number, a string is not a number
        ("[sync]\noverlap_days = true\n", "sync.overlap_days: Input should be a valid integer (got true)"),
        ("[api]\npage_size = '20'\n", "api.page_size: Input should be a valid integer (got '20', a string)"),
        ('[api]\ntimeout_seconds = "30"\n', "api.timeout_seconds: Input should be a valid number"),
        ("[database]\nauto_upgrade = 1\n", "database.auto_upgrade: Input should be a valid boolean (got 1)"),
        ("[smtp]\nport = 587.0\n", "smtp.port: Input should be a valid integer (got 587.0)"),
        ('[api]\nfields = "protocolSection"\n', "api.fields: Input should be a valid list"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        load_settings(write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_sqlite_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "[database]\npath = 'data/x.db'\n"))
    assert s.database_url() == f"sqlite:///{tmp_path / 'data' / 'x.db'}"


def test_database_password_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = load_settings(write(tmp_path, "[database]\nurl = 'postgresql+psycopg://ct@db.example/ct'\n"))
    monkeypatch.setenv("CTMONITOR_DATABASE_PASSWORD", "s3cret")
    assert s.database_url() == "postgresql+psycopg://ct:s3cret@db.example/ct"


def test_env_selects_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, "[sync]\noverlap_days = 9\n")
    monkeypatch.setenv("CTMONITOR_CONFIG", str(p))
    assert load_settings().sync.overlap_days == 9
