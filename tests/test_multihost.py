"""Two `mock-portal serve` hosts (127.0.0.2 and 127.0.0.3) on one PostgreSQL database behave as one
portal: the clock, fault plans and their counters, trust changes, tokens, expectations, the journal
and IPSS exactly-once sharing are the same whichever host a request reaches."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from fixtures.hospital import HiapClient
from fixtures.pki import TestPKI, cert_pem
from tests.conftest import PEM, Hospital, provision, trust_root
from tests.live import IPSS_KEY, LiveServer, start_server
from tests.test_ipss import wait_shared, whole_feed
from tests.wire import explain, sample

pytestmark = pytest.mark.postgresql_only


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    first = start_server(Path(tmp_path_factory.mktemp("host-a")), host="127.0.0.2")
    try:
        second = start_server(
            Path(tmp_path_factory.mktemp("host-b")), host="127.0.0.3", database_url=first.database_url
        )
    except BaseException:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


@pytest.fixture(scope="module")
def admins(hosts: tuple[LiveServer, LiveServer]) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with hosts[0].admin() as a, hosts[1].admin() as b:
        yield a, b


@pytest.fixture(scope="module")
def site(admins: tuple[httpx.Client, httpx.Client], hosts: tuple[LiveServer, LiveServer], pki: TestPKI) -> Hospital:
    trust_root(admins[0], pki)  # trusted through host A only
    return provision(admins[0], pki, hosts[0].base_url)


def on(host: LiveServer, site: Hospital) -> HiapClient:
    """The hospital's wire client pointed at `host`."""
    return HiapClient(host.base_url, facility_code=site.code, username=site.username, password=site.password)


def test_hosts_listen_on_their_own_addresses(hosts: tuple[LiveServer, LiveServer]) -> None:
    assert [h.base_url.split(":")[1] for h in hosts] == ["//127.0.0.2", "//127.0.0.3"]
    assert hosts[0].database_url == hosts[1].database_url and hosts[0].database_url.startswith("postgresql")


def test_a_clock_set_on_one_host_is_read_on_the_other(admins: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = admins
    try:
        assert a.put("/sandbox/clock", json={"now": "2025-08-29T15:59:00+07:00", "rate": 0}).status_code == 200
        assert b.get("/sandbox/clock").json()["now_vn"] == "2025-08-29T15:59:00+07:00"
        assert b.post("/sandbox/clock/advance", json={"working_minutes": 240}).status_code == 200
        assert a.get("/sandbox/clock").json()["now_vn"] == "2025-09-03T10:59:00+07:00"
    finally:
        assert b.delete("/sandbox/clock").status_code == 200
    assert a.get("/sandbox/clock").json()["mode"] != "frozen"


def test_a_fault_plan_and_its_counters_span_both_hosts(
    hosts: tuple[LiveServer, LiveServer], admins: tuple[httpx.Client, httpx.Client], site: Hospital
) -> None:
    a, b = admins
    plan = {"faults": [{"name": "flaky", "effect": "portal_error", "every_nth": 2, "operations": ["token"]}]}
    assert a.put("/sandbox/faults", json=plan).status_code == 200
    try:
        form = {"username": site.username, "password": site.client.password_md5}
        codes = [httpx.post(f"{hosts[n % 2].base_url}/api/token/take", data=form).json()["maKetQua"] for n in range(6)]
        assert codes == ["200", "500"] * 3, "every 2nd token request of the portal, whichever host served it"
        assert b.get("/sandbox/faults").json()["plan"]["faults"][0]["name"] == "flaky"
    finally:
        assert b.delete("/sandbox/faults").status_code == 204
    assert a.get("/sandbox/faults").json()["plan"]["faults"] == []


def test_trust_changed_on_one_host_is_applied_by_the_other(
    hosts: tuple[LiveServer, LiveServer], admins: tuple[httpx.Client, httpx.Client], pki: TestPKI, site: Hospital
) -> None:
    a, b = admins
    assert on(hosts[1], site).send("GCS", sample(site)).ma_ket_qua == "200"  # B trusts what A registered
    fingerprint = site.credential.fingerprint
    assert a.delete(f"/sandbox/facilities/{site.code}/certificates/{fingerprint}").status_code == 204
    refused = on(hosts[1], site).send("GCS", sample(site))
    assert refused.ma_ket_qua != "200", "host B must see the certificate withdrawn on host A"
    again = b.post(f"/sandbox/facilities/{site.code}/certificates", content=cert_pem(site.credential.cert), headers=PEM)
    assert again.status_code == 201, again.text
    assert on(hosts[0], site).send("GCS", sample(site)).ma_ket_qua == "200"


def test_a_token_from_one_host_works_on_the_other(hosts: tuple[LiveServer, LiveServer], site: Hospital) -> None:
    client = on(hosts[0], site)
    token = client.take_token()
    other = on(hosts[1], site)
    reply = httpx.post(
        f"{hosts[1].base_url}/api/hososuckhoe/guiGiayToDienTu", data=other.form("61", sample(site), token)
    )
    assert reply.json()["MaKetQua"] == "200", reply.text


def test_expectation_journal_and_sharing_are_one_portal(
    hosts: tuple[LiveServer, LiveServer], admins: tuple[httpx.Client, httpx.Client], site: Hospital
) -> None:
    a, b = admins
    issued = datetime.now().astimezone().replace(microsecond=0)
    xml = sample(site, issued_at=issued, signing_time=issued)
    code = re.search(rb"<MA_GCS>([^<]+)</MA_GCS>", xml).group(1).decode()
    expectation = a.post(
        "/sandbox/expectations",
        json={"type": "GCS", "facility": site.code, "issued_at": issued.isoformat(), "match": {"MA_GCS": code}},
    ).json()
    reply = on(hosts[1], site).send("GCS", xml)  # accepted on B
    assert reply.ma_ket_qua == "200", explain(b, reply)["findings"]
    assert a.get(f"/sandbox/expectations/{expectation['id']}").json()["status"] == "ARRIVED"
    assert explain(a, reply)["document"]["code"] == code, "A reads the submission B stored"
    journal = a.get("/sandbox/journal", params={"facility": site.code, "operation": "submit", "limit": 1}).json()
    assert journal[0]["submission_id"] == int(reply.submission_id), "A's journal holds B's exchange"
    with (
        httpx.Client(base_url=hosts[0].base_url, headers={"X-API-Key": IPSS_KEY}) as ipss_a,
        httpx.Client(base_url=hosts[1].base_url, headers={"X-API-Key": IPSS_KEY}) as ipss_b,
    ):
        shared = wait_shared(ipss_a, "GCS", code)
        assert len(shared["history"]) == 1
        for _ in range(3):  # both hosts' sharing workers run: still exactly one copy of everything
            assert a.get("/sandbox/sharing").json()["pending"] == 0
        feed_a, feed_b = whole_feed(ipss_a), whole_feed(ipss_b)
        assert feed_a == feed_b
        documents = [item["ma_gd"] for item in feed_a]
        assert len(documents) == len(set(documents)), "no document shared twice"
        assert reply.ma_gd in documents
