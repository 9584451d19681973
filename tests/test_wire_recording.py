"""Issue 26: the wire exchanges recorded on the code before the exchange was derived in one place
(`tests/data/wire_exchanges.json`, made by `python -m tests.wire_recording`) are answered and journalled
byte for byte the same."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mock_portal.wire.reply import SUBMIT_PATH, TOKEN_PATH
from tests.live import LiveServer, start_server
from tests.wire_recording import RECORDING, SERVER_ENV, record

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recording_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("recording"), extra_env=SERVER_ENV)
    yield live
    live.stop()


def test_recorded_wire_exchanges_are_replayed_byte_for_byte(recording_server: LiveServer) -> None:
    expected = json.loads(RECORDING.read_text(encoding="utf-8"))
    replayed = record(recording_server)
    labels = [e["label"] for e in expected["exchanges"]]
    assert [e["label"] for e in replayed["exchanges"]] == labels
    for before, after in zip(expected["exchanges"], replayed["exchanges"], strict=True):
        assert after == before, before["label"]
    assert replayed["journal"] == expected["journal"]


def test_every_sandbox_header_of_a_recorded_reply_is_in_the_contract() -> None:
    """A header the portal sends on a wire reply that `openapi.yaml` does not name is one a hospital's
    generated client never learns of (X-Sandbox-Findings was missing on the submit reply)."""
    contract = yaml.safe_load((ROOT / "mock_portal" / "openapi.yaml").read_text(encoding="utf-8"))
    documented = {
        key: {name.lower() for name in contract["paths"][path]["post"]["responses"]["200"]["headers"]}
        for key, path in (("maKetQua", TOKEN_PATH), ("MaKetQua", SUBMIT_PATH))
    }
    checked = 0
    for exchange in json.loads(RECORDING.read_text(encoding="utf-8"))["exchanges"]:
        if exchange.get("status") != 200:
            continue
        body = json.loads(exchange["body"])
        sent = {name for name, _ in exchange["headers"] if name.startswith("x-sandbox-")}
        [key] = [k for k in documented if k in body]
        assert sent <= documented[key], (exchange["label"], sent - documented[key])
        checked += 1
    assert checked >= 30
