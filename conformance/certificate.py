"""A verifiable certificate: the run's files, a manifest of their SHA-256 digests, and a signature on it.

Every report directory becomes a bundle: report.json, evidence.jsonl, junit.xml, report.html,
fault_plans.json, versions.json and `manifest.json` (digest of each), signed with a key made for the
run (ECDSA P-256, `manifest.sig`, public key in `manifest.pub.pem`). The sandbox portal holds no
signing key of its own to lend (its keys are the hospitals' test PKI), so the run signs with its own:
the signature proves the files are the ones the run wrote; *who* ran it is proven by pinning the key
(`conformance verify BUNDLE --key run.pub.pem`, the key published beside the certificate).

`verify` checks every digest, the signature, and that the evidence re-judges to the verdicts in
report.json with this version of the suite.
"""

from __future__ import annotations

import base64
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conformance.cases import load_cases
from conformance.evidence import Bundle, load
from conformance.runner import judge

__all__ = ["MANIFEST", "seal", "verify"]

MANIFEST, SIGNATURE, PUBLIC_KEY = "manifest.json", "manifest.sig", "manifest.pub.pem"
SEALED = ("report.json", "evidence.jsonl", "junit.xml", "report.html", "fault_plans.json", "versions.json")
PACKAGES = ("vn-civil-cert-sandbox", "lxml", "signxml", "cryptography", "connexion", "flask", "httpx")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _versions(bundle: Bundle) -> dict[str, Any]:
    found: dict[str, Any] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["suite_version"] = bundle.meta.get("suite_version")
    found["tool_version"] = bundle.meta.get("tool_version")
    return found


def seal(directory: Path, bundle: Bundle) -> Path:
    """Write fault_plans.json and versions.json, then the signed manifest over every sealed file."""
    plans = {s.name: {"facility": s.facility, "fault_plan": s.fault_plan} for s in bundle.scenarios}
    (directory / "fault_plans.json").write_text(json.dumps(plans, ensure_ascii=False, indent=2), encoding="utf-8")
    (directory / "versions.json").write_text(json.dumps(_versions(bundle), indent=2), encoding="utf-8")
    manifest = {
        "files": {name: _digest(directory / name) for name in SEALED if (directory / name).exists()},
        "algorithm": "SHA-256; manifest signed ECDSA P-256 / SHA-256 with the run's own key",
        "run_id": bundle.meta.get("run_id"),
        "seed": bundle.meta.get("seed"),
    }
    data = json.dumps(manifest, indent=2, sort_keys=True).encode()
    (directory / MANIFEST).write_bytes(data)
    key = ec.generate_private_key(ec.SECP256R1())
    (directory / SIGNATURE).write_text(base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode() + "\n")
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (directory / PUBLIC_KEY).write_bytes(public)
    return directory / MANIFEST


def verify(directory: Path, pinned_key: bytes | None = None) -> list[str]:
    """Problems found (empty: the bundle is intact, signed, and re-judges the same)."""
    try:
        data = (directory / MANIFEST).read_bytes()
        signature = base64.b64decode((directory / SIGNATURE).read_text())
        public = (directory / PUBLIC_KEY).read_bytes()
    except (OSError, ValueError) as exc:
        return [f"not a sealed bundle: {exc}"]
    problems = []
    if pinned_key is not None and pinned_key.strip() != public.strip():
        problems.append("signed with another key than the one given with --key")
    try:
        key = serialization.load_pem_public_key(public)
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg, union-attr]
    except (InvalidSignature, ValueError, TypeError) as exc:
        problems.append(f"the manifest's signature does not verify ({type(exc).__name__})")
    manifest = json.loads(data)
    for name, digest in manifest.get("files", {}).items():
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif _digest(path) != digest:
            problems.append(f"{name}: changed since the run (SHA-256 differs)")
    if problems:
        return problems
    return _rejudge(directory)


def _rejudge(directory: Path) -> list[str]:
    """The evidence judged again must give the verdicts report.json states."""
    report = json.loads((directory / "report.json").read_text(encoding="utf-8"))
    stated = {c["id"]: c["verdict"] for c in report.get("cases", [])}
    registry = load_cases()
    unknown = [case_id for case_id in stated if case_id not in registry.ids()]
    if unknown:
        return [f"cases unknown to this suite version: {', '.join(unknown)}"]
    results = judge([registry.get(case_id) for case_id in stated], load(directory / "evidence.jsonl"))
    return [
        f"{r.case_id}: report.json says {stated[r.case_id]}, the evidence judges {r.verdict.value}"
        for r in results
        if r.verdict.value != stated[r.case_id]
    ]
