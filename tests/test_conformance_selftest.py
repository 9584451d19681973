"""`conformance selftest`: which cases each target runs, how a row is judged, and one live variant
end to end (the whole matrix is `make selftest`, called from CI). The live tests share the module's portal:
the self-test's runs each open a workspace of their own there (`--portal`), the provisioning test works in
its default workspace (issue 26: one portal start, not three)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from conformance import UsageError, selftest
from conformance.cases import load_cases
from conformance.cli import main
from conformance.harness import FacilityUnderTest, Provisioning, provision
from conformance.portal import SandboxAdmin
from conformance.scenarios import issued_for_deadline
from fixtures.hospital.worker import Variant
from mock_portal.deadline.working_time import WorkingCalendar, deadline_for
from tests.live import LiveServer

CASES = load_cases()

pytestmark = pytest.mark.portal()


def test_every_variant_has_a_target_naming_a_must_case() -> None:
    targets = {t.variant: t for t in selftest.EXPECTED}
    assert set(Variant) <= set(targets) and len(set(Variant)) >= 18
    for target in selftest.EXPECTED:
        if target.expected is not None:
            assert CASES.get(target.expected).level.value == "MUST"
            assert target.expected in {s.id for s in selftest.specs_for(target, CASES.all())}


def test_the_correct_hospital_runs_with_three_seeds_and_over_subsets_of_the_scenarios() -> None:
    reference = [t for t in selftest.EXPECTED if t.variant is None]
    assert all(t.expected is None for t in reference)
    every = [t for t in reference if set(t.tags) == set(selftest.SCENARIOS)]
    assert len({t.seed for t in every}) == 3
    subsets = [t for t in reference if set(t.tags) < set(selftest.SCENARIOS)]
    assert len(subsets) >= 3 and all(t.tags for t in subsets)
    names = [selftest.MatrixRow(t, None, "", 1.0).name for t in reference]
    assert len(set(names)) == len(names) and "reference, only outage" in names


def test_a_target_runs_only_the_cases_its_scenarios_feed() -> None:
    fifo = next(t for t in selftest.EXPECTED if t.variant is Variant.FIFO)
    ids = {s.id for s in selftest.specs_for(fifo, CASES.all())}
    assert {"DL-004", "API-011", "API-012", "DL-001", "FLOW-005"} <= ids
    assert not {"API-014", "API-007", "DL-002"} & ids


@pytest.mark.parametrize(
    ("expected", "first", "ok", "verdict"),
    [
        ("API-006", "API-006", True, "expected"),
        ("API-006", None, False, "NOT CAUGHT: certified"),
        ("API-006", "API-009", False, "WRONG REASON: expected API-006"),
        (None, None, True, "CONFORMANT, as it must be"),
        (None, "DL-001", False, "WRONG: the correct hospital failed"),
    ],
)
def test_a_row_is_ok_only_when_the_named_case_fails_first(
    expected: str | None, first: str | None, ok: bool, verdict: str
) -> None:
    row = selftest.MatrixRow(selftest.Target("x" if expected else None, expected), first, "", 1.0)
    assert (row.ok, row.verdict) == (ok, verdict)
    assert ("problem" in selftest.render([row])) is not ok


def test_the_urgent_order_is_issued_from_the_deadline_arithmetic() -> None:
    """The backlog's urgent order: the latest minute whose 4-working-hour deadline is not after the target."""
    calendar = WorkingCalendar.default()
    target = datetime(2026, 12, 7, 9, 20, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))  # a Monday morning
    issued = issued_for_deadline(target, calendar)
    assert deadline_for(issued, calendar) <= target < deadline_for(issued + timedelta(minutes=1), calendar)
    assert issued.weekday() == 4  # the previous Friday


def test_selftest_runs_a_variant_live_and_prints_the_matrix(
    portal: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    on = ["--portal", portal.base_url, "--admin-token", portal.admin_token]
    assert main(["selftest", "--variants", "no-dedupe", "--json", "--clock-rate", "1200", *on]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["variant"], r["first_failed_must"], r["ok"]) for r in rows] == [
        ("no-dedupe", "API-012", True),
        ("no-dedupe --only API-012", "API-012", True),  # the same case, and the same message, alone
    ]
    assert "request_id" in rows[0]["message"]


def test_selftest_refuses_an_unknown_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selftest", "--variants", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--portal", "http://127.0.0.1:9"], "--admin-token (or PORTAL_ADMIN_TOKEN) is needed with --portal"),
        (["--admin-token", "t"], "--admin-token is for the portal --portal names"),
    ],
    ids=["portal-without-token", "token-without-portal"],
)
def test_selftest_refuses_a_portal_without_its_token_before_any_run(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every run would stop on the missing token (each row an ERROR, and a summary under them): said once."""
    monkeypatch.delenv("PORTAL_ADMIN_TOKEN", raising=False)
    assert main(["selftest", "--variants", "no-dedupe", *argv]) == 2
    out = capsys.readouterr()
    assert said in out.err and "no-dedupe" not in out.out


def test_provisioning_refuses_an_existing_facility_with_other_credentials(portal: LiveServer) -> None:
    """`make serve`'s demo facility with another password: refused up front, not an API-001 failure later."""
    admin = SandboxAdmin(portal.base_url, portal.admin_token)
    try:
        provision(admin, [FacilityUnderTest("79001", "79001_BV", "first-pass")], Provisioning())
        with pytest.raises(UsageError, match="--reuse-facility") as refused:
            provision(admin, [FacilityUnderTest("79001", "79001_BV", "other-pass")], Provisioning())
        assert "does not log in as 79001_BV" in str(refused.value)
        with pytest.raises(UsageError, match="not 79001_X"):
            provision(admin, [FacilityUnderTest("79001", "79001_X", "first-pass")], Provisioning())
        provision(admin, [FacilityUnderTest("79001", "79001_BV", "other-pass")], Provisioning(), reuse=True)
        provision(
            admin, [FacilityUnderTest("79001", "79001_BV", "first-pass")], Provisioning()
        )  # the same account: fine
    finally:
        admin.close()
