"""Issue 26: configuration read once and malformed values refused. `PORTAL_*` is read in one place per
process (`Settings.from_env`, called once by each `mock-portal` command), a value that cannot be taken
stops the start with a message naming the variable, the value and what is accepted, and `mock-portal
serve` hands its settings down instead of writing them into the environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from fixtures.ports import free_port
from mock_portal import cli, serving
from mock_portal.config import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("PORTAL_REQUIRE_CRL", "ture", "true or false"),
        ("PORTAL_SHARING_ENABLED", "enabled", "true or false"),
        ("PORTAL_TOKEN_TTL_MINUTES", "60m", "a whole number"),
        ("PORTAL_JOURNAL_MAX_ENTRIES", "-1", "a whole number, 0 or more"),
        ("PORTAL_WIRE_INLINE_BYTES", "32 KiB", "a whole number"),
        ("PORTAL_PORT", "70000", "a TCP port, 1 to 65535"),
        ("PORTAL_STRICTNESS", "lenient", "portal or strict"),
        ("PORTAL_DATABASE_URL", "mysql://portal@db/portal", "sqlite:///FILE or postgresql://"),
        ("PORTAL_DATABASE_URL", "var/portal.sqlite3", "sqlite:///FILE or postgresql://"),
    ],
)
def test_a_malformed_value_is_refused_naming_variable_value_and_what_is_accepted(
    variable: str, value: str, accepted: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({variable: value})
    assert str(refused.value).startswith(f"{variable}={value!r}: expected "), str(refused.value)
    assert accepted in str(refused.value)


def test_every_malformed_value_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"PORTAL_REQUIRE_CRL": "ture", "PORTAL_PORT": "80a", "PORTAL_HOST": "0.0.0.0"})
    assert [problem.split("=")[0] for problem in refused.value.problems] == ["PORTAL_PORT", "PORTAL_REQUIRE_CRL"]


def test_the_accepted_spellings_are_taken() -> None:
    settings = Settings.from_env(
        {
            "PORTAL_REQUIRE_CRL": "TRUE",
            "PORTAL_SHARING_ENABLED": "off",
            "PORTAL_PORT": " 8081 ",
            "PORTAL_STRICTNESS": "Strict",
            "PORTAL_WIRE_INLINE_BYTES": "0",
            "PORTAL_DATABASE_URL": "postgres://portal@db/portal",
            "PORTAL_JOURNAL_MAX_ENTRIES": "",  # empty: unset, the default
        }
    )
    assert (settings.require_crl, settings.sharing_enabled, settings.port) == (True, False, 8081)
    assert (settings.inline_limit, settings.journal_max_entries) == (0, Settings().journal_max_entries)
    assert {yes: Settings.from_env({"PORTAL_REQUIRE_CRL": yes}).require_crl for yes in ("1", "yes", "On")} == {
        "1": True,
        "yes": True,
        "On": True,
    }


def test_the_command_refuses_malformed_values_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PORTAL_REQUIRE_CRL": "ture", "PORTAL_PORT": "70000"}
    env["PORTAL_DATABASE_URL"] = f"sqlite:///{tmp_path / 'never.sqlite3'}"
    run = subprocess.run(
        [sys.executable, "-m", "mock_portal.cli", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and run.stdout == "", "refused before anything starts or is printed"
    assert "mock-portal: PORTAL_REQUIRE_CRL='ture': expected true or false" in run.stderr, run.stderr
    assert "mock-portal: PORTAL_PORT='70000': expected a TCP port, 1 to 65535" in run.stderr, run.stderr
    assert not (tmp_path / "never.sqlite3").exists()


def test_an_unknown_calendar_is_refused_by_every_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("PORTAL_CALENDAR", "hcmc-0830")
    monkeypatch.setenv("PORTAL_DATABASE_URL", f"sqlite:///{tmp_path / 'never.sqlite3'}")
    for command in (["report", "--period", "2025-H1"], ["attestation-key", "show"], ["migrate"]):
        assert cli.main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("mock-portal: PORTAL_CALENDAR='hcmc-0830': unknown calendar"), err
        assert "'24x7'" in err and "hcmc-0730" in err, "what is accepted"


def test_serve_hands_its_settings_down_and_leaves_the_environment_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The admin token is made by the command (none in the environment): the server processes get it from
    the command's `Settings`, not from PORTAL_ADMIN_TOKEN written into os.environ for them to read again."""
    for name in ("PORTAL_ADMIN_TOKEN", "PORTAL_IPSS_API_KEY", "PORTAL_HOST", "PORTAL_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORTAL_DATABASE_URL", f"sqlite:///{tmp_path / 'portal.sqlite3'}")
    monkeypatch.setenv("PORTAL_SHARING_ENABLED", "no")
    handed: list[object] = []

    def serve(*args: object, **kwargs: object) -> int:
        handed.extend([*args, kwargs])
        return 0

    monkeypatch.setattr(serving, "serve", serve)
    before = dict(os.environ)
    port = free_port()
    assert cli.main(["serve", "--port", str(port), "--workers", "2"]) == 0
    assert dict(os.environ) == before
    settings, options = handed
    assert isinstance(settings, Settings) and options == {"workers": 2, "log_level": "info", "access_log": False}
    assert (settings.port, settings.sharing_enabled, settings.database_url) == (
        port,
        False,
        f"sqlite:///{tmp_path / 'portal.sqlite3'}",
    )
    assert f"export PORTAL_ADMIN_TOKEN={settings.admin_token}\n" in capsys.readouterr().out


def test_each_worker_process_is_handed_the_commands_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(admin_token="made-by-the-command", port=free_port())
    supervisor = serving._Supervisor(settings, 2, "warning", False)
    started: list[tuple[object, ...]] = []

    class Process:
        def __init__(self, *, target: object, args: tuple[object, ...], name: str) -> None:
            started.append((target, *args))

        def start(self) -> None:
            pass

    monkeypatch.setattr(supervisor.context, "Process", Process)
    supervisor._start_one()
    assert started == [(serving._worker, settings, "warning", False, None)]


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = {f"PORTAL_{f.name.upper()}" for f in fields(Settings)} - set(re.findall(r"PORTAL_[A-Z_]+", readme))
    assert not missing, "settings the README does not name"
    assert "true or false (also `1`/`0`, `yes`/`no`, `on`/`off`" in readme, "the README says what a yes/no accepts"


def test_only_the_entry_points_read_the_settings() -> None:
    """`Settings.from_env` once per process, in the entry points; only config.py touches the environment."""
    sources = {
        path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8") for path in ROOT.glob("mock_portal/**/*.py")
    }
    readers = {name for name, text in sources.items() if ".from_env(" in text}
    environment = {name for name, text in sources.items() if re.search(r"os\.environ|os\.getenv|putenv", text)}
    assert readers == {"mock_portal/cli.py", "mock_portal/asgi.py"}
    assert environment == {"mock_portal/config.py"}


def test_a_port_flag_out_of_range_is_a_usage_error_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    from mock_portal import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["serve", "--port", "70000"])
    assert exit_.value.code == 2 and "expected a port number, 1-65535" in capsys.readouterr().err


def test_a_portal_name_that_is_no_setting_is_refused_with_the_nearest_setting() -> None:
    """A misspelt name would leave its setting at the default without a word (a portal without CRL checks
    for a user who asked for them)."""
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"PORTAL_REQUIRE_CLR": "true", "PORTAL_SOMETHING_ELSE": "1", "PORTALX": "kept"})
    assert refused.value.problems == [
        "PORTAL_REQUIRE_CLR: no such setting (did you mean PORTAL_REQUIRE_CRL?)",
        "PORTAL_SOMETHING_ELSE: no such setting",
    ]
