"""`conformance`: certify a hospital's integration.

    conformance --version
    conformance list [--json]
    conformance check FILE... [--facility CODE] [--trust CA.pem] [--crl CRL] [--json] [--cases] [--report-dir DIR]
    conformance run (--trigger-cmd CMD | --trigger-url URL | --reference [--variant NAME] [--port-range LOW-HIGH])
                    [--portal URL]
                    [--admin-token T] [--facility CODE --username U --password P] [--cert CERT.pem]
                    [--trust CA.pem] [--crl CRL.pem] [--clock-rate 600] [--only IDS] [--report-dir DIR] [--seed N]
    conformance replay EVIDENCE.jsonl [--only IDS] [--report-dir DIR]
    conformance selftest [--variants NAMES] [--seed N] [--json] [--portal URL --admin-token T]
    conformance coverage [--json]
    conformance verify BUNDLE_DIR [--portal-key KEY.pem | --portal URL]

`check` judges files offline with the portal's own checks (exit 1 when any file would be refused);
`run` drives a hospital system through its trigger against the sandbox portal and judges the cases;
`replay` re-judges saved evidence. `run` and `replay` exit 1 when any MUST case fails. A run that cannot
start (a missing file, a --trust that holds no certificate, a vendor trigger without --portal) exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from conformance import EXIT_USAGE, SUITE_VERSION, UsageError
from conformance import evidence as ev
from conformance.cases import load_cases
from conformance.events import Event, Listener, RunFinished, RunStarted
from conformance.offline import OFFLINE_AREAS, FileVerdict, check_file, read_input
from conformance.registry import CaseSpec
from conformance.report import FileReports, TextReporter
from conformance.runner import judge
from mock_portal import sandbox_version
from mock_portal.results.codes import SubmitResult
from mock_portal.results.grades import Strictness
from mock_portal.signature.options import add_trust_options
from mock_portal.signature.trust import TrustFileError, trust_from_files

DEFAULT_FACILITY = "79001"
NO_VARIANT = "no selftest variant is meant to fail its cases first (yet)"
TRIGGER_HELP = """\
the trigger contract (conformance/trigger.schema.json, docs/vendor-guide.md):
  --trigger-cmd CMD   run once per order, WITHOUT a shell: CMD is split like a POSIX shell would
                      (shlex) and executed directly, so no pipes, redirections or $VARS; wrap them
                      in a script. The order is one JSON object on stdin (UTF-8). Exit code 0 = taken;
                      anything else, or no exit within 30 s, = not taken (stderr/stdout tail is kept
                      as the note). It runs in the directory `conformance` was started from, with its
                      environment.
  --trigger-url URL   one HTTP POST per order, Content-Type application/json; any 2xx = taken;
                      30 s timeout.
  The same request_id may come twice: it is the same order, take it once (API-012).
  issued_at is SANDBOX time (the portal's clock, days ahead of the real one when the run starts
  on the next working Monday 08:00 Vietnam time), with offset; the deadline counts from it. On
  one facility each scenario starts at 08:00 of the next working day (the clock jumps forward).
  The portal base URL is --portal; the clock rate is --clock-rate (default 600: one real second
  is ten sandbox minutes); the current sandbox time is GET <portal>/sandbox/health ("time").
  With --order-portal every order also carries them: "portal": {"base_url", "clock_rate",
  "sandbox_time"} (optional in the schema; off by default, as older systems refuse unknown keys).
  A send that gets no reply (connection closed, timeout) must be resent until acknowledged
  (API-015); the resend of a file the portal had stored is no duplicate (API-011).
  Build the XML from `data` with the elements in the order of the ordered XSD
  (mock_portal/documents/xsd/HSDLGCS.ordered.xsd, HSDLGBT.ordered.xsd: xs:sequence, for code
  generators; linked from trigger.schema.json: "xsd"); HSDLGCS.xsd / HSDLGBT.xsd validate.
"""


def _render(result: FileVerdict) -> str:
    verdict = result.verdict
    status = "ACCEPTED" if verdict.result is SubmitResult.OK else f"REFUSED (MaKetQua {verdict.result.value})"
    lines = [f"{result.path}: {status}  facility {result.facility_code or '?'}  ({result.strictness} mode)"]
    if verdict.result is not SubmitResult.OK:
        lines.append(f"  cause: {verdict.explain()}")  # the portal's X-Sandbox-Explain, word for word
    if verdict.signature is not None:
        sig = verdict.signature
        sub = f" / {sig.sub_indication.value}" if sig.sub_indication else ""
        lines.append(f"  signature: {sig.indication.value}{sub} ({sig.profile or 'no profile'})")
    for finding in verdict.findings:
        where = f" at {finding.path}" if finding.path else ""
        graded = f"  [{finding.grade}: {finding.source}]" if finding.grade else ""
        lines.append(f"  {finding.severity.value.upper():7} {finding.code}{where}{graded}")
        lines.append(f"          {finding.message_en}")
        lines.append(f"          {finding.message_vi}")
    return "\n".join(lines)


def _as_json(result: FileVerdict) -> dict[str, object]:
    verdict = result.verdict
    return {
        "file": str(result.path),
        "facility": result.facility_code,
        "result": verdict.result.value,
        "strictness": result.strictness,
        "findings": [f.to_dict() for f in verdict.findings],
        "signature": verdict.signature.to_dict() if verdict.signature else None,
    }


def _selected(only: str | None) -> list[CaseSpec]:
    registry = load_cases()
    ids = [part.strip() for part in (only or "").split(",") if part.strip()]
    try:
        return registry.select(ids=ids)
    except KeyError as exc:
        raise UsageError(f"--only: {exc.args[0]}") from exc


def _listeners(report_dir: Path | None, quiet: bool = False) -> list[Listener]:
    listeners: list[Listener] = [] if quiet else [TextReporter()]
    if report_dir is not None:
        listeners.append(FileReports(report_dir))
    return listeners


def _judge_bundle(bundle: ev.Bundle, specs: list[CaseSpec], listeners: list[Listener], mode: str) -> RunFinished:
    """Judge saved or offline evidence, emitting the same events a live run emits."""
    started = time.monotonic()
    meta = bundle.meta
    start = RunStarted(
        mode,
        SUITE_VERSION,
        sandbox_version(),
        meta.get("seed"),
        str(meta.get("portal", "")),
        str(meta.get("trigger", "")),
        tuple(s.id for s in specs),
    )

    def emit(event: Event) -> None:
        for listener in listeners:
            listener(event)

    emit(start)
    results = judge(specs, bundle, emit)
    finished = RunFinished(tuple(results), bundle, time.monotonic() - started)
    emit(finished)
    return finished


def _check(args: argparse.Namespace) -> int:
    trust = trust_from_files(args.trust, args.crl)
    strictness = Strictness.parse(args.strictness)
    for path in args.files:  # every file readable before any verdict is printed
        read_input(path, "FILE")
    results = [check_file(path, facility_code=args.facility, trust=trust, strictness=strictness) for path in args.files]
    if args.json:
        print(json.dumps([_as_json(r) for r in results], ensure_ascii=False, indent=2))
    else:
        print("\n\n".join(_render(r) for r in results))
        if not args.trust:
            print("\nnote: no --trust CA given, so no certificate chain can be found")
    if args.cases or args.report_dir:
        specs = [s for s in load_cases().all() if s.area in OFFLINE_AREAS]
        bundle = ev.from_file_verdicts(results)
        _judge_bundle(bundle, specs, _listeners(args.report_dir, quiet=not args.cases or args.json), "check")
    return 0 if all(r.verdict.result is SubmitResult.OK for r in results) else 1


def _list(args: argparse.Namespace) -> int:
    specs = load_cases().all()
    if args.json:
        rows = [
            {
                "id": s.id,
                "title": s.title,
                "area": s.area,
                "level": s.level.value,
                "basis": s.basis,
                "grade": s.grade.value,
                "result": s.result,
                "needs": list(s.needs),
            }
            for s in specs
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    print(f"conformance suite {SUITE_VERSION}: {len(specs)} cases")
    area = None
    for spec in specs:
        if spec.area != area:
            area = spec.area
            print(f"\n[{area}]")
        print(
            f"  {spec.id:<12} {spec.level.value:<6} {spec.title}\n  {'':<12} {'':<6} basis: {spec.basis};"
            f" grade: {spec.grade.value}; counts towards: {spec.result}"
        )
    return 0


def _replay(args: argparse.Namespace) -> int:
    bundle = ev.load(args.evidence)
    return _judge_bundle(bundle, _selected(args.only), _listeners(args.report_dir), "replay").exit_code


def _run(args: argparse.Namespace) -> int:
    from conformance.harness import LiveOptions, run_live
    from conformance.portal import PortRange

    options = LiveOptions(
        trigger_cmd=args.trigger_cmd,
        trigger_url=args.trigger_url,
        reference=args.reference,
        variant=args.variant,
        portal=args.portal,
        admin_token=args.admin_token,
        facility=args.facility or DEFAULT_FACILITY,
        username=args.username,
        password=args.password or "conformance",
        cert=args.cert,
        trust=tuple(args.trust),
        crl=tuple(args.crl),
        clock_rate=args.clock_rate,
        seed=args.seed,
        timeout=args.timeout,
        reuse_facility=args.reuse_facility,
        keep_workspace=args.keep_workspace,
        order_portal=args.order_portal,
        port_range=PortRange.parse(args.port_range) if args.port_range else None,
    )
    finished = run_live(options, _selected(args.only), _listeners(args.report_dir))
    if args.report_dir:
        print(
            f"reports in {args.report_dir}: junit.xml, report.json, report.html, evidence.jsonl, fault_plans.json, "
            f"versions.json, manifest.json and the portal's attestation (conformance verify {args.report_dir})"
        )
    return finished.exit_code


def _verify(args: argparse.Namespace) -> int:
    from conformance.certificate import PinnedKey, keys_from_pem, keys_from_portal, verify

    pinned: tuple[PinnedKey, ...] | None
    if args.portal_key:
        pinned = keys_from_pem(read_input(args.portal_key, "--portal-key"), str(args.portal_key))
    else:
        pinned = keys_from_portal(args.portal) if args.portal else None
    found = verify(args.bundle, pinned)
    for problem in found.problems:
        print(f"  FAIL  {problem}")
    for note in found.notes:
        print(f"  note  {note}")
    if found.problems:
        print(f"{args.bundle}: NOT VERIFIED ({len(found.problems)} problem(s))")
        return 1
    who = "attested by the pinned portal key" if pinned else "the signer's key NOT PINNED"
    print(f"{args.bundle}: verified: intact, complete, re-judges the same; {who}")
    return 0


def _coverage(args: argparse.Namespace) -> int:
    from conformance.obligations import coverage
    from conformance.selftest import kills

    found = coverage(load_cases().ids(), kills())
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return 0
    source = None
    for item in found["obligations"]:
        if item["source"] != source:
            source = item["source"]
            print(f"\n[{source}]")
        checked = ", ".join(item["cases"]) or f"NOT CHECKED — {item['why_unchecked']}"
        broken = ", ".join(item["variants"])
        why = "no case checks it" if not item["cases"] else item["why_unprotected"] or NO_VARIANT
        shown = f"broken by {broken}" if broken else f"UNPROTECTED — {why}"
        print(f"  {item['id']:<8} {item['text']}\n  {'':<8} → {checked}\n  {'':<8} ✗ {shown}")
    print(
        f"\n{len(found['obligations'])} obligations, {len(found['unchecked'])} checked by no case "
        f"({', '.join(found['unchecked']) or 'none'}), {len(found['unprotected'])} broken by no selftest variant "
        f"(UNPROTECTED: {', '.join(found['unprotected']) or 'none'}); cases mapped to no obligation: "
        f"{', '.join(found['unmapped_cases']) or 'none'}"
    )
    return 0


def _selftest(args: argparse.Namespace) -> int:
    from conformance import selftest

    targets = [
        t for t in selftest.EXPECTED if not args.variants or str(t.variant or "reference") in args.variants.split(",")
    ]
    if not targets:
        raise UsageError(f"--variants: none of {args.variants!r} is a built-in variant (or 'reference')")
    admin_token = args.admin_token or os.environ.get("PORTAL_ADMIN_TOKEN") if args.portal else None
    if args.portal and not admin_token:
        raise UsageError("--admin-token (or PORTAL_ADMIN_TOKEN) is needed with --portal")
    if args.admin_token and not args.portal:
        raise UsageError("--admin-token is for the portal --portal names (without it each run starts its own)")

    def progress(row: selftest.MatrixRow) -> None:
        if not args.json:
            shown = "ERROR (the run did not finish)" if row.error else row.first_failed or "certified"
            print(f"  {row.name}: {shown} ({row.seconds:.0f} s)", flush=True)

    rows = selftest.run_selftest(
        targets,
        seed=args.seed,
        rate=args.clock_rate,
        timeout=args.timeout,
        workers=args.workers,
        progress=progress,
        portal=selftest.PortalAccess(args.portal, admin_token),
    )
    if args.json:
        print(json.dumps(selftest.kill_matrix(rows), ensure_ascii=False, indent=2))
    else:
        print(selftest.render(rows))
    return 0 if all(row.ok for row in rows) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conformance", description="Certify a hospital's GCS/GBT integration")
    parser.add_argument(
        "--version", action="version", version=f"conformance {sandbox_version()} (suite {SUITE_VERSION})"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="print the case catalogue with levels and bases")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)

    check = commands.add_parser("check", help="judge signed files offline, as the portal would")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.add_argument("--facility", help="submitting facility (default: the one in MA_GCS / MA_GBT)")
    add_trust_options(check, judged="the offline check")
    check.add_argument(
        "--strictness",
        choices=["portal", "strict"],
        default="portal",
        help="judge as the portal mode would (portal: refuse only what the evidence supports; strict: every check)",
    )
    check.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    check.add_argument("--cases", action="store_true", help="also judge the document and signature cases")
    check.add_argument("--report-dir", type=Path, help="write junit.xml, report.json, report.html for those cases")
    check.set_defaults(func=_check)

    run = commands.add_parser(
        "run",
        help="drive a hospital system live and judge every case",
        description="Drive a hospital system live and judge every case.",
        epilog=TRIGGER_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    who = run.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--trigger-cmd", metavar="CMD", help="command that takes one order as JSON on stdin (exit 0 = taken)"
    )
    who.add_argument("--trigger-url", metavar="URL", help="URL that takes one order as a JSON POST (2xx = taken)")
    who.add_argument("--reference", action="store_true", help="start the reference hospital and certify it")
    run.add_argument("--variant", help="with --reference: a deliberately broken variant (no-retry, sha1, …)")
    run.add_argument(
        "--port-range",
        metavar="LOW-HIGH",
        help="with --reference: every port the run listens on (its own portal, one reference hospital per "
        "scenario facility, all on 127.0.0.1) is a free one of LOW-HIGH, e.g. 20000-20100 (default: ports "
        "the kernel picks); a range too small or with no free port left stops the run (exit 2)",
    )
    run.add_argument(
        "--portal",
        help="base URL of the portal your hospital system sends to (required with --trigger-*; "
        "with --reference, default: start one on a free loopback port)",
    )
    run.add_argument("--admin-token", help="the portal's admin token (default: $PORTAL_ADMIN_TOKEN)")
    run.add_argument(
        "--keep-workspace",
        action="store_true",
        help="with --reference --portal: keep the workspace the run opened (its id and key go to stderr)",
    )
    run.add_argument("--facility", help=f"the hospital's MA_CSKCB (default {DEFAULT_FACILITY})")
    run.add_argument("--username", help="its portal account (default <facility>_BV)")
    run.add_argument("--password", help="its portal password (default 'conformance')")
    run.add_argument("--cert", type=Path, help="the hospital's signing certificate, registered for the facility")
    add_trust_options(run, judged="the portal the run starts")
    run.add_argument(
        "--clock-rate", type=float, default=600.0, help="sandbox clock speed (600: 4 working hours in 24 s)"
    )
    run.add_argument("--only", help="comma-separated case IDs (a trailing * matches a prefix)")
    run.add_argument("--report-dir", type=Path, help="write junit.xml, report.json, report.html, evidence.jsonl here")
    run.add_argument("--seed", type=int, help="seed of the generated data and fault plans (default: random)")
    run.add_argument("--timeout", type=float, default=150.0, help="real seconds a scenario may wait for its documents")
    run.add_argument(
        "--reuse-facility",
        action="store_true",
        help="run on an existing facility even when its account differs from --username/--password "
        "(by default such a run is refused: a correct hospital would fail API-001 on it)",
    )
    run.add_argument(
        "--order-portal",
        action="store_true",
        help="add the optional `portal` object (base_url, clock_rate, sandbox_time) to every order; off by "
        "default because a system built against an earlier trigger schema refuses unknown keys "
        "(--reference always sends it)",
    )
    run.set_defaults(func=_run)

    verifying = commands.add_parser(
        "verify",
        help="check a report bundle: the portal's attestation, every file, every case, and that it re-judges the same",
        description="Exit 1, naming each problem, when a file was added, removed or changed, a case is missing or "
        "extra, the summary does not follow from the verdicts, the verdicts or evidence differ from what the portal "
        "attested, or the evidence does not re-judge the same. Without --portal-key or --portal the signer's key is "
        "not pinned: the bundle is checked, but nothing proves which portal observed the run.",
    )
    verifying.add_argument("bundle", type=Path, metavar="BUNDLE_DIR", help="a --report-dir of run/replay/check")
    pin = verifying.add_mutually_exclusive_group()
    pin.add_argument(
        "--portal-key", type=Path, metavar="KEY.pem", help="the portal's attestation public key(s) to trust (PEM)"
    )
    pin.add_argument(
        "--portal", metavar="URL", help="trust the keys this portal publishes (GET /sandbox/attestation-keys)"
    )
    verifying.set_defaults(func=_verify)

    covered = commands.add_parser(
        "coverage",
        help="obligations (decree, dispatch, circulars, profile) → cases, and the selftest variants that break them",
    )
    covered.add_argument("--json", action="store_true")
    covered.set_defaults(func=_coverage)

    selftest = commands.add_parser(
        "selftest",
        help="run the suite against every built-in broken variant of the reference hospital (kill matrix)",
        description="Runs the suite against the correct reference hospital and each broken variant; prints "
        "variant -> first failed MUST case -> expected?. Exit 1 when a variant is certified or caught by another "
        "case than the one that names its bug, or the correct hospital is not CONFORMANT.",
    )
    selftest.add_argument("--variants", help="comma-separated variant names ('reference' for the correct one)")
    selftest.add_argument("--seed", type=int, default=7, help="seed of the generated data and fault plans")
    selftest.add_argument("--clock-rate", type=float, default=600.0, help="sandbox clock speed")
    selftest.add_argument("--timeout", type=float, default=60.0, help="real seconds a scenario may wait")
    selftest.add_argument(
        "--workers",
        type=int,
        default=2,
        help="runs side by side (each with its own portal, or workspace with --portal)",
    )
    selftest.add_argument(
        "--portal",
        metavar="URL",
        help="run on this portal, each run in a workspace of its own (default: each run starts a portal of its own)",
    )
    selftest.add_argument("--admin-token", help="with --portal: its admin token (default: $PORTAL_ADMIN_TOKEN)")
    selftest.add_argument("--json", action="store_true", help="print the kill matrix as JSON")
    selftest.set_defaults(func=_selftest)

    replay = commands.add_parser("replay", help="re-judge saved evidence (evidence.jsonl)")
    replay.add_argument("evidence", type=Path, metavar="EVIDENCE.jsonl")
    replay.add_argument("--only", help="comma-separated case IDs")
    replay.add_argument("--report-dir", type=Path)
    replay.set_defaults(func=_replay)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if getattr(args, "variant", None) and not getattr(args, "reference", False):
            raise UsageError("--variant needs --reference")
        return int(args.func(args))
    except (UsageError, TrustFileError) as exc:  # a --trust/--crl/--cert file names itself
        print(f"conformance {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
