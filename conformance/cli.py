"""`conformance`: certify a hospital's integration.

    conformance check FILE... [--facility CODE] [--trust CA.pem] [--crl CRL] [--json]

`check` judges files offline with the portal's own checks; exit code 1 when any file would be refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from conformance.offline import FileVerdict, check_file, trust_from_files
from mock_portal.codes import SubmitResult


def _render(result: FileVerdict) -> str:
    verdict = result.verdict
    status = "ACCEPTED" if verdict.result is SubmitResult.OK else f"REFUSED (MaKetQua {verdict.result.value})"
    lines = [f"{result.path}: {status}  facility {result.facility_code or '?'}"]
    if verdict.signature is not None:
        sig = verdict.signature
        sub = f" / {sig.sub_indication.value}" if sig.sub_indication else ""
        lines.append(f"  signature: {sig.indication.value}{sub} ({sig.profile or 'no profile'})")
    for finding in verdict.findings:
        where = f" at {finding.path}" if finding.path else ""
        lines.append(f"  {finding.severity.value.upper():7} {finding.code}{where}")
        lines.append(f"          {finding.message_en}")
        lines.append(f"          {finding.message_vi}")
    return "\n".join(lines)


def _as_json(result: FileVerdict) -> dict[str, object]:
    verdict = result.verdict
    return {
        "file": str(result.path),
        "facility": result.facility_code,
        "result": verdict.result.value,
        "findings": [f.to_dict() for f in verdict.findings],
        "signature": verdict.signature.to_dict() if verdict.signature else None,
    }


def _check(args: argparse.Namespace) -> int:
    trust = trust_from_files(args.trust, args.crl)
    results = [check_file(path, facility_code=args.facility, trust=trust) for path in args.files]
    if args.json:
        print(json.dumps([_as_json(r) for r in results], ensure_ascii=False, indent=2))
    else:
        print("\n\n".join(_render(r) for r in results))
        if not args.trust:
            print("\nnote: no --trust CA given, so no certificate chain can be found")
    return 0 if all(r.verdict.result is SubmitResult.OK for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conformance", description="Certify a hospital's GCS/GBT integration")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="judge signed files offline, as the portal would")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.add_argument("--facility", help="submitting facility (default: the one in MA_GCS / MA_GBT)")
    check.add_argument(
        "--trust",
        type=Path,
        action="append",
        default=[],
        metavar="CA.pem",
        help="a trusted CA certificate (repeatable)",
    )
    check.add_argument(
        "--crl", type=Path, action="append", default=[], metavar="CRL", help="a CRL, PEM or DER (repeatable)"
    )
    check.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    check.set_defaults(func=_check)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
