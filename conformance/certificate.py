"""A verifiable certificate: the run's files, a manifest of their digests, and who vouches for them.

Every report directory becomes a bundle: report.json, evidence.jsonl, junit.xml, report.html,
fault_plans.json, versions.json and `manifest.json` (the SHA-256 of each). A live run asks the portal
that served it to attest the bundle (`conformance.attestation`): attestation.json is the portal's
statement in canonical JSON — the digests of the journal entries and submissions it holds for the run,
every case's verdict and the summary the suite claimed, and the manifest's digest — attestation.sig
its detached Ed25519 signature, attestation.pub.pem the key the portal published for it (unpinned: it
proves nothing until the verifier pins the portal's key). A bundle no portal observed (`check`,
`replay`, a portal without attestations) is signed with a key made for it, `manifest.sig` and
`manifest.pub.pem`, and says so: it is *not attested by a portal*.

`verify` fails a bundle, naming what is wrong, for: a file added, removed or changed; a signature that
does not verify, or a key other than the pinned portal key (or a key used outside its validity); a
case missing or extra for the suite version; a summary that does not follow from the verdicts;
report.json verdicts or summary other than those attested; evidence whose journal entries or
submissions differ from what the portal signed; and evidence that does not re-judge to the same
verdicts. What this proves, and what not: docs/vendor-guide.md ("Verifying a bundle").
"""

from __future__ import annotations

import base64
import hashlib
import json
import platform
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from conformance import SUITE_VERSION, UsageError
from conformance.attestation import evidence_problems
from conformance.cases import load_cases
from conformance.events import Witness
from conformance.evidence import Bundle, load
from conformance.model import CaseResult, CaseVerdict
from conformance.offline import OFFLINE_AREAS
from conformance.outcome import summary
from conformance.portal import PortalCallError, published_keys
from conformance.registry import CaseSpec
from conformance.runner import judge
from mock_portal.attestation.canonical import FORMAT, canonical, key_id, signature_valid

__all__ = ["MANIFEST", "PinnedKey", "Verification", "keys_from_pem", "keys_from_portal", "seal", "verify"]

MANIFEST, RUN_SIGNATURE, RUN_KEY = "manifest.json", "manifest.sig", "manifest.pub.pem"
ATTESTATION, ATTESTATION_SIGNATURE, ATTESTATION_KEY = "attestation.json", "attestation.sig", "attestation.pub.pem"
SIGNATURES = (RUN_SIGNATURE, RUN_KEY, ATTESTATION, ATTESTATION_SIGNATURE, ATTESTATION_KEY)
SEALED = ("report.json", "evidence.jsonl", "junit.xml", "report.html", "fault_plans.json", "versions.json")
PACKAGES = ("vn-civil-cert-sandbox", "lxml", "signxml", "cryptography", "connexion", "flask", "httpx")
NOT_ATTESTED = "not attested by a portal"
PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)
SUMMARY_EXEMPT = ("root_causes",)
"""Summary keys that need the cases' messages, not only their verdicts (checked by re-judging)."""


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


# --- sealing -------------------------------------------------------------------------------------
def _manifest(directory: Path, bundle: Bundle, signer: str) -> bytes:
    manifest = {
        "files": {name: _digest(directory / name) for name in SEALED if (directory / name).exists()},
        "algorithm": "SHA-256",
        "signer": signer,
        "mode": bundle.meta.get("mode"),
        "run_id": bundle.meta.get("run_id"),
        "seed": bundle.meta.get("seed"),
    }
    data = json.dumps(manifest, indent=2, sort_keys=True).encode()
    (directory / MANIFEST).write_bytes(data)
    return data


def seal(directory: Path, bundle: Bundle, witness: Witness | None = None) -> Path:
    """Write fault_plans.json, versions.json and the manifest, then have the `witness` (the portal that
    served the run) attest it; without one, or when the portal cannot, sign it with a key made now."""
    for name in SIGNATURES:  # a directory sealed before holds another run's signature
        (directory / name).unlink(missing_ok=True)
    plans = {s.name: {"facility": s.facility, "fault_plan": s.fault_plan} for s in bundle.scenarios}
    (directory / "fault_plans.json").write_text(json.dumps(plans, ensure_ascii=False, indent=2), encoding="utf-8")
    (directory / "versions.json").write_text(json.dumps(_versions(bundle), indent=2), encoding="utf-8")
    why = "no portal observed it" if bundle.meta.get("mode") == "check" else "judged from saved evidence"
    if witness is not None:
        manifest = _manifest(directory, bundle, "the portal's attestation key")
        try:
            attestation = witness.attest(manifest)
        except (PortalCallError, httpx.HTTPError) as exc:
            why = f"the portal did not attest it: {exc}"
        else:
            (directory / ATTESTATION).write_bytes(attestation.data)
            (directory / ATTESTATION_SIGNATURE).write_text(base64.b64encode(attestation.signature).decode() + "\n")
            (directory / ATTESTATION_KEY).write_bytes(attestation.public_pem)
            return directory / MANIFEST
    manifest = _manifest(directory, bundle, f"a key made for this bundle: {NOT_ATTESTED} ({why})")
    key = Ed25519PrivateKey.generate()
    (directory / RUN_SIGNATURE).write_text(base64.b64encode(key.sign(manifest)).decode() + "\n")
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (directory / RUN_KEY).write_bytes(public)
    return directory / MANIFEST


# --- pinned keys ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PinnedKey:
    """A portal key the verifier trusts, and where it came from; with its validity when the portal says."""

    public_pem: bytes
    source: str
    valid_from: str | None = None
    valid_until: str | None = None

    @property
    def id(self) -> str:
        return key_id(self.public_pem)

    def covers(self, instant: str) -> bool:
        """Whether the key could sign at `instant` (RFC 3339, UTC): from its making until its retirement."""
        return (self.valid_from is None or self.valid_from <= instant) and (
            self.valid_until is None or instant < self.valid_until
        )


def keys_from_pem(data: bytes, source: str) -> tuple[PinnedKey, ...]:
    """Every public key in a PEM file (`--portal-key`); a file that holds no Ed25519 public key is a usage error."""
    keys = []
    for block in PEM_BLOCK.findall(data):
        try:
            public = serialization.load_pem_public_key(block)
        except ValueError as exc:
            raise UsageError(f"--portal-key {source}: not a public key ({exc})") from exc
        if not isinstance(public, Ed25519PublicKey):
            raise UsageError(f"--portal-key {source}: not an Ed25519 key (the portal signs with Ed25519)")
        keys.append(PinnedKey(block + b"\n", source))
    if not keys:
        raise UsageError(f"--portal-key {source}: no PEM public key in it")
    return tuple(keys)


def keys_from_portal(url: str) -> tuple[PinnedKey, ...]:
    """The keys a portal publishes (`GET /sandbox/attestation-keys`), retired ones with their validity."""
    try:
        found = published_keys(url)
    except (PortalCallError, httpx.HTTPError, ValueError) as exc:
        raise UsageError(f"--portal {url}: cannot read its attestation keys ({exc})") from exc
    return tuple(
        PinnedKey(k["public_pem"].encode(), f"{url} (key {k['id']})", k.get("valid_from"), k.get("valid_until"))
        for k in found
    )


# --- verifying -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verification:
    """What `verify` found: problems (none: the bundle verifies) and what the verification means."""

    problems: tuple[str, ...]
    notes: tuple[str, ...]


def _read(directory: Path, name: str) -> bytes | None:
    path = directory / name
    return path.read_bytes() if path.is_file() else None


def _files(directory: Path, manifest: dict[str, Any]) -> list[str]:
    """Every file in the directory is listed (or a signature file), and every listed file is unchanged."""
    listed: dict[str, str] = manifest.get("files") or {}
    problems = [
        f"{p.name}: not in the manifest (added after sealing)"
        for p in sorted(directory.iterdir())
        if p.name not in listed and p.name not in (MANIFEST, *SIGNATURES)
    ]
    for name, digest in sorted(listed.items()):
        path = directory / name
        if Path(name).name != name or name in (MANIFEST, *SIGNATURES):
            problems.append(f"manifest.json: names {name!r}, which is no file of a bundle")
        elif not path.is_file():
            problems.append(f"{name}: missing (removed after sealing)")
        elif _digest(path) != digest:
            problems.append(f"{name}: changed since sealing (SHA-256 differs from the manifest)")
    return problems


def _attestation(
    directory: Path, manifest: bytes, pinned: tuple[PinnedKey, ...] | None
) -> tuple[dict[str, Any] | None, list[str], list[str]]:
    """The portal's statement, and whether the pinned key (or, unpinned, the shipped one) signed it."""
    data, signature_text = _read(directory, ATTESTATION), _read(directory, ATTESTATION_SIGNATURE)
    if data is None or signature_text is None:
        return None, [f"{ATTESTATION_SIGNATURE}: missing (removed after sealing)"], []
    try:
        statement, signature = json.loads(data), base64.b64decode(signature_text, validate=False)
    except ValueError as exc:
        return None, [f"{ATTESTATION}: not the portal's statement ({exc})"], []
    problems: list[str] = []
    if not isinstance(statement, dict) or statement.get("format") != FORMAT:
        return None, [f"{ATTESTATION}: not a statement of format {FORMAT}"], []
    if canonical(statement) != data:
        problems.append(f"{ATTESTATION}: not in canonical form (changed after signing)")
    if (statement.get("claimed") or {}).get("manifest_sha256") != hashlib.sha256(manifest).hexdigest():
        problems.append(f"{MANIFEST}: not the manifest the portal attested (its SHA-256 differs)")
    signed_by, signed_at = str(statement.get("key_id")), str(statement.get("signed_at"))
    if pinned is None:
        shipped = _read(directory, ATTESTATION_KEY) or b""
        if not shipped or key_id(shipped) != signed_by:
            problems.append(f"{ATTESTATION_KEY}: missing, or not the key {signed_by} the statement names")
        elif not signature_valid(shipped, data, signature):
            problems.append(f"{ATTESTATION_SIGNATURE}: does not verify under {ATTESTATION_KEY}")
        note = (
            f"the portal's key was NOT PINNED: the attestation verifies under key {signed_by} shipped in the bundle, "
            "which proves nothing about who observed the run; pin it with --portal-key PEM or --portal URL"
        )
        return statement, problems, [note]
    match = next((k for k in pinned if k.id == signed_by), None)
    if match is None:
        ids = ", ".join(f"{k.id} from {k.source}" for k in pinned)
        problems.append(f"{ATTESTATION}: signed by key {signed_by}, not by the pinned portal key ({ids})")
    elif not signature_valid(match.public_pem, data, signature):
        problems.append(f"{ATTESTATION_SIGNATURE}: does not verify under the pinned portal key {signed_by}")
    elif not match.covers(signed_at):
        problems.append(
            f"{ATTESTATION}: signed at {signed_at}, outside the validity of key {signed_by} "
            f"({match.valid_from} to {match.valid_until or 'now'}): a retired key signs nothing"
        )
    note = f"attested by the portal key {signed_by} pinned from {match.source if match else '?'}, at {signed_at}"
    return statement, problems, [note]


def _run_key(directory: Path, manifest: bytes, pinned: tuple[PinnedKey, ...] | None) -> tuple[list[str], list[str]]:
    signature_text, public = _read(directory, RUN_SIGNATURE), _read(directory, RUN_KEY)
    if signature_text is None or public is None:
        return [f"{ATTESTATION} or {RUN_SIGNATURE}: missing: the bundle is signed by nobody"], []
    problems = []
    if not signature_valid(public, manifest, base64.b64decode(signature_text, validate=False)):
        problems.append(f"{RUN_SIGNATURE}: does not verify under {RUN_KEY}")
    if pinned is not None:
        problems.append(
            f"{NOT_ATTESTED}: signed with a key made for the bundle, so the pinned portal key cannot vouch for it"
        )
    note = (
        f"{NOT_ATTESTED.upper()}: signed with a key made for the bundle, which proves only that its files are "
        "the ones sealed, not who ran the suite or what any portal observed"
    )
    return problems, [note]


def _expected(mode: str) -> list[CaseSpec]:
    """The complete case list of this suite version for a bundle of `mode`."""
    cases = load_cases().all()
    return [s for s in cases if s.area in OFFLINE_AREAS] if mode == "check" else cases


def _cases(stated: list[str], expected: list[CaseSpec], mode: str) -> list[str]:
    problems = [
        f"report.json: case {i} listed {stated.count(i)} times" for i in sorted(set(stated)) if stated.count(i) > 1
    ]
    ids = [s.id for s in expected]
    missing = [i for i in ids if i not in stated]
    extra = [i for i in dict.fromkeys(stated) if i not in ids]
    if missing:
        problems.append(f"report.json: cases of suite {SUITE_VERSION} missing ({mode} bundle): {', '.join(missing)}")
    if extra:
        problems.append(f"report.json: cases not in suite {SUITE_VERSION} for a {mode} bundle: {', '.join(extra)}")
    return problems


def _summary(report: dict[str, Any], expected: list[CaseSpec]) -> list[str]:
    """The summary must follow from the case verdicts (and the suite's levels), as the runner computes it."""
    specs = {s.id: s for s in expected}
    results = [
        CaseResult(
            c["id"],
            "",
            specs[c["id"]].area,
            specs[c["id"]].level,
            "",
            CaseVerdict(c["verdict"]),
            result=specs[c["id"]].result,
        )
        for c in report.get("cases", [])
        if c.get("id") in specs and c.get("verdict") in set(CaseVerdict)
    ]
    computed, stated = summary(results), report.get("summary") or {}
    wrong = [k for k in computed if k not in SUMMARY_EXEMPT and stated.get(k) != computed[k]]
    if not wrong:
        return []
    shown = "; ".join(f"{k}: says {stated.get(k)!r}, the verdicts give {computed[k]!r}" for k in wrong[:3])
    return [f"report.json: the summary does not follow from the case verdicts ({shown})"]


def _claims(statement: dict[str, Any], report: dict[str, Any], bundle: Bundle) -> list[str]:
    """report.json and the evidence name the run, the verdicts and the summary the portal attested."""
    problems = []
    run = statement.get("run") or {}
    for key, value in (("run_id", bundle.meta.get("run_id")), ("seed", report.get("seed"))):
        if run.get(key) != value:
            problems.append(f"{ATTESTATION}: attests {key} {run.get(key)!r}, the bundle says {value!r}")
    claimed = statement.get("claimed") or {}
    attested = {c["id"]: c["verdict"] for c in claimed.get("cases", [])}
    stated = {c.get("id"): c.get("verdict") for c in report.get("cases", [])}
    for case_id in attested:
        if case_id not in stated:
            problems.append(f"report.json: drops {case_id}, attested by the portal as {attested[case_id]}")
        elif stated[case_id] != attested[case_id]:
            problems.append(f"report.json: {case_id} says {stated[case_id]}, the portal attested {attested[case_id]}")
    problems += [f"report.json: adds {i}, which the portal never attested" for i in stated if i not in attested]
    if report.get("summary") != claimed.get("summary"):
        said, signed = (report.get("summary") or {}).get("verdict"), (claimed.get("summary") or {}).get("verdict")
        problems.append(
            f"report.json: the summary is not the one the portal attested (verdict {said!r}, attested {signed!r})"
        )
    return problems + evidence_problems(statement, bundle)


def _rejudge(report: dict[str, Any], expected: list[CaseSpec], bundle: Bundle) -> list[str]:
    """The evidence judged again must give the verdicts report.json states."""
    stated = {c.get("id"): c.get("verdict") for c in report.get("cases", [])}
    results = judge([s for s in expected if s.id in stated], bundle)
    return [
        f"{r.case_id}: report.json says {stated[r.case_id]}, the evidence judges {r.verdict.value}"
        for r in results
        if r.verdict.value != stated[r.case_id]
    ]


def verify(directory: Path, pinned: tuple[PinnedKey, ...] | None = None) -> Verification:
    """Every check of the module docstring; `pinned`: the portal keys to trust (None: none pinned)."""
    manifest_data = _read(directory, MANIFEST) if directory.is_dir() else None
    if manifest_data is None:
        return Verification((f"{directory}: not a sealed bundle (no {MANIFEST})",), ())
    try:
        manifest = json.loads(manifest_data)
        report = json.loads((directory / "report.json").read_text(encoding="utf-8"))
        bundle = load(directory / "evidence.jsonl")
    except (OSError, ValueError, TypeError) as exc:
        return Verification((f"not a readable bundle: {exc}",), ())
    problems = _files(directory, manifest)
    if _read(directory, ATTESTATION) is not None or _read(directory, ATTESTATION_SIGNATURE) is not None:
        statement, signed, notes = _attestation(directory, manifest_data, pinned)
    else:
        statement, (signed, notes) = None, _run_key(directory, manifest_data, pinned)
    problems += signed
    mode = str(report.get("mode") or bundle.meta.get("mode") or "run")
    if report.get("suite_version") != SUITE_VERSION:
        problems.append(
            f"report.json: made by suite {report.get('suite_version')}, this verifier judges with suite "
            f"{SUITE_VERSION}: verify it with that version of the tool"
        )
        return Verification(tuple(problems), tuple(notes))
    expected = _expected(mode)
    stated = [str(c.get("id")) for c in report.get("cases", [])]
    problems += _cases(stated, expected, mode) + _summary(report, expected)
    if statement is not None:
        problems += _claims(statement, report, bundle)
    problems += _rejudge(report, expected, bundle)
    return Verification(tuple(problems), tuple(notes))
