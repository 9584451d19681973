"""Setting up a live run: the portal (given, or started here), facilities, trust material, and —
for `run --reference` — a test PKI and one reference hospital process per facility.

The reference hospital is the positive control (`python -m fixtures.hospital serve`); its broken
variants prove that each case can fail for the right reason. One hospital process per scenario
facility lets scenarios run side by side on one accelerated clock.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from conformance import UsageError
from conformance.events import Listener, RunFinished
from conformance.offline import read_input
from conformance.portal import (
    PortRange,
    Ports,
    SandboxAdmin,
    own_workspace,
    restoring,
    start_local_portal,
    wait_until_up,
    warning_text,
)
from conformance.registry import CaseSpec
from conformance.runner import Lane, Runner, needed_tags
from conformance.scenarios import scenarios_for
from conformance.trigger import CommandTrigger, HttpTrigger, Trigger
from fixtures.hospital.worker import SIGNING, Signing, Variant
from fixtures.pki import TestPKI, cert_pem, crl_pem, write_pki
from mock_portal.signature.trust import certificates_from

__all__ = [
    "FacilityUnderTest",
    "LiveOptions",
    "Provisioning",
    "portal_admin",
    "provision",
    "reference_lanes",
    "run_live",
    "vendor_lanes",
]

REFERENCE_PROVINCE = "79"
START_SECONDS = 30.0
START_SECONDS_EACH = 4.0
"""How long the reference hospitals of a run may take to answer: at least START_SECONDS, and this much per
hospital, as they all start at once and each imports the portal's modules (1.2 s of one core, measured)."""
DEFAULT_FACILITY = "79001"


@dataclass(frozen=True)
class FacilityUnderTest:
    """The facility a run submits as, and its wire account (not the portal's stored `Facility` row)."""

    code: str
    username: str
    password: str


@dataclass(frozen=True)
class Provisioning:
    """Trust material the portal needs before the hospital sends anything."""

    ca_pems: tuple[bytes, ...] = ()
    crl_pems: tuple[bytes, ...] = ()
    certificates: dict[str, bytes] = field(default_factory=dict)
    """Signing certificate PEM per facility code ("Danh mục chứng thư số")."""


def provision(
    admin: SandboxAdmin, facilities: list[FacilityUnderTest], material: Provisioning, *, reuse: bool = False
) -> list[str]:
    """Trust, facilities and certificates; the portal's warnings about the material, as run notes (a
    certificate not valid now is registered, but the portal's signature check would refuse what it signs).
    An existing facility whose account differs from the one given is refused (a correct hospital would
    fail API-001 for it) unless `reuse` says to run on it anyway."""
    for facility in facilities:
        created = admin.ensure_facility(facility.code, facility.username, facility.password)
        if created or reuse:
            continue
        why = admin.credentials_differ(facility.code, facility.username, facility.password)
        if why:
            raise UsageError(
                f"facility {facility.code} already exists on the portal with other credentials: {why}. Give its "
                "--username and --password, pick another --facility, or pass --reuse-facility to run on it anyway"
            )
    notes = [warning_text("trusted CA", w) for pem in material.ca_pems for w in admin.trust_ca(pem)]
    for pem in material.crl_pems:
        admin.load_crl(pem)
    for facility in facilities:
        if facility.code in material.certificates:
            warnings = admin.register_certificate(facility.code, material.certificates[facility.code])
            notes += [warning_text(f"the certificate of facility {facility.code}", w) for w in warnings]
    return notes


@contextlib.contextmanager
def portal_admin(url: str | None, admin_token: str | None, workdir: Path, ports: Ports) -> Iterator[SandboxAdmin]:
    """The given portal, or one started here for the run on a port of `ports` (stopped afterwards)."""
    local = None
    if url is None:
        local = start_local_portal(workdir, port=ports.take("the portal"))
        url, admin_token = local.base_url, local.admin_token
    if not admin_token:
        raise UsageError("--admin-token (or PORTAL_ADMIN_TOKEN) is needed with --portal")
    admin = SandboxAdmin(url, admin_token)
    try:
        yield admin
    finally:
        admin.close()
        if local is not None:
            local.stop()


def vendor_lanes(
    trigger: Trigger, facility: FacilityUnderTest, cert: Path | None, trust: list[Path], crls: list[Path]
) -> tuple[list[Lane], list[FacilityUnderTest], Provisioning]:
    """One facility, the vendor's own trigger, certificate and CA: scenarios run one after the other."""
    for path in trust:
        certificates_from(path, "--trust")
    if cert:
        certificates_from(cert, "--cert")
    material = Provisioning(
        ca_pems=tuple(read_input(p, "--trust") for p in trust),
        crl_pems=tuple(read_input(p, "--crl") for p in crls),
        certificates={facility.code: read_input(cert, "--cert")} if cert else {},
    )
    return [Lane(facility.code, trigger)], [facility], material


@dataclass
class ReferenceHospitals:
    """Reference hospital processes, one per facility; stop them with `stop()`."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def reference_lanes(
    portal_url: str,
    workdir: Path,
    count: int,
    *,
    variant: str | None,
    clock_rate: float,
    account: str = "BV",
    hospital_args: tuple[str, ...] = (),
    ports: Ports | None = None,
) -> tuple[list[Lane], list[FacilityUnderTest], Provisioning, ReferenceHospitals]:
    """A test PKI, `count` facilities and a reference hospital serving each over an HTTP trigger on a port of
    `ports` (default: ones the kernel picks). Their accounts are `<code>_<account>` (account names are unique
    across a portal's workspaces); `hospital_args` are more `python -m fixtures.hospital serve` options, e.g.
    `--late-seconds`."""
    ports = ports or Ports()
    codes = [f"{REFERENCE_PROVINCE}{101 + i:03d}" for i in range(count)]
    facilities = [FacilityUnderTest(code, f"{code}_{account}", "ref-pass") for code in codes]
    pki = TestPKI.create(
        {f.code: f"Bệnh viện tham chiếu {f.code}" for f in facilities}, now=datetime.now(UTC).replace(microsecond=0)
    )
    signing = SIGNING.get(Variant(variant), Signing()) if variant else Signing()
    files = write_pki(pki, workdir / "pki", [f.code for f in facilities], variant=signing.certificate)
    material = Provisioning(
        ca_pems=(cert_pem(*pki.ca_certs),),
        crl_pems=(crl_pem(pki.crl()),),
        certificates={
            f.code: files[f"{f.code}.cert.pem"].read_bytes()
            if signing.registered
            else cert_pem(pki.issue_facility_cert(f.code).cert)  # the certificate before the rotation
            for f in facilities
        },
    )
    hospitals, started = ReferenceHospitals(), []
    try:
        for facility in facilities:
            port = ports.take(f"the reference hospital of facility {facility.code}")
            state = workdir / f"hospital-{facility.code}"
            state.mkdir(parents=True, exist_ok=True)
            command = [
                sys.executable, "-m", "fixtures.hospital", "serve",
                "--state-dir", str(state), "--listen", f"127.0.0.1:{port}", "--portal", portal_url,
                "--facility", facility.code, "--username", facility.username, "--password", facility.password,
                "--key", str(files[f"{facility.code}.key.pem"]), "--cert", str(files[f"{facility.code}.cert.pem"]),
                "--clock-rate", str(clock_rate),
            ]  # fmt: skip
            if variant:
                command += ["--variant", variant]
            command += hospital_args
            log = state / "hospital.log"
            with log.open("wb") as out:
                hospitals.processes.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT))  # noqa: S603
            started.append((facility, port, log))
        for (_facility, port, log), process in zip(started, hospitals.processes, strict=True):
            wait_until_up(
                f"http://127.0.0.1:{port}/health", process, log, max(START_SECONDS, START_SECONDS_EACH * count)
            )
    except BaseException:
        hospitals.stop()
        raise
    built = [Lane(f.code, HttpTrigger(f"http://127.0.0.1:{port}/orders")) for f, port, _ in started]
    return built, facilities, material, hospitals


def make_trigger(command: str | None, url: str | None) -> Trigger:
    if command is not None and url is None:
        return CommandTrigger(command)
    if url is not None and command is None:
        return HttpTrigger(url)
    raise UsageError("give exactly one of --trigger-cmd and --trigger-url (or --reference)")


@dataclass(frozen=True)
class LiveOptions:
    """Everything `conformance run` and the pytest plugin need to drive a hospital live."""

    trigger_cmd: str | None = None
    trigger_url: str | None = None
    reference: bool = False
    variant: str | None = None
    portal: str | None = None
    admin_token: str | None = None
    facility: str = DEFAULT_FACILITY
    username: str | None = None
    password: str = "conformance"
    cert: Path | None = None
    trust: tuple[Path, ...] = ()
    crl: tuple[Path, ...] = ()
    clock_rate: float = 600.0
    seed: int | None = None
    timeout: float = 150.0
    reuse_facility: bool = False
    keep_workspace: bool = False
    """A reference run on a shared portal (`--portal`) opens a workspace of its own and deletes it at the
    end unless this is set."""
    order_portal: bool = False
    """Add the optional `portal` object to every order (always for the reference hospital)."""
    port_range: PortRange | None = None
    """With `reference`: the ports the run's own portal and hospitals listen on (default: the kernel's choice)."""

    @property
    def description(self) -> str:
        if self.reference:
            return f"reference hospital{' (variant ' + self.variant + ')' if self.variant else ''}"
        return make_trigger(self.trigger_cmd, self.trigger_url).description


def _port_range(options: LiveOptions, hospitals: int) -> PortRange | None:
    """The run's port range, refused when it cannot be used: with a vendor trigger (the run listens on no
    port) or when it holds fewer ports than the run's own portal and reference hospitals need."""
    allowed = options.port_range
    if allowed is None:
        return None
    if not options.reference:
        raise UsageError("--port-range needs --reference: a run with a vendor trigger listens on no port of its own")
    needed = hospitals + (options.portal is None)
    if len(allowed) < needed:
        portal = " the portal and" if options.portal is None else ""
        raise UsageError(
            f"--port-range {allowed} holds {len(allowed)} port(s); this run needs {needed}:{portal} "
            f"{hospitals} reference hospital(s), one per scenario facility of the cases selected"
        )
    return allowed


def run_live(options: LiveOptions, specs: list[CaseSpec], listeners: Sequence[Listener]) -> RunFinished:
    """Start or reach the portal, provision, start the reference hospital if asked, run, clean up."""
    if not options.reference and options.portal is None:
        # a private portal on a random port is one the vendor's system was never pointed at
        raise UsageError(
            "a vendor trigger needs --portal URL: the portal your hospital system sends to "
            "(start one with `make serve`); only --reference starts a portal of its own"
        )
    count = len(scenarios_for(needed_tags(specs))) if options.reference else 0
    ports = Ports(_port_range(options, count))
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        workdir = Path(tmp)
        token = options.admin_token or os.environ.get("PORTAL_ADMIN_TOKEN")
        with contextlib.ExitStack() as stack:
            admin = stack.enter_context(portal_admin(options.portal, token, workdir, ports))
            if options.reference and options.portal is not None:  # a shared portal: a workspace of its own
                admin = stack.enter_context(own_workspace(admin, "conformance run", keep=options.keep_workspace))
            # the portal outlives the run (the vendor's, or a workspace kept): what the hospital still sends lands there
            lasting = options.portal is not None and (admin.workspace is None or options.keep_workspace)
            hospitals, description = None, options.description
            if options.reference:
                lanes, facilities, material, hospitals = reference_lanes(
                    admin.base_url,
                    workdir,
                    count,
                    variant=options.variant,
                    clock_rate=options.clock_rate,
                    account=admin.workspace or "BV",
                    ports=ports,
                )
                description += f" ({', '.join(lane.trigger.description for lane in lanes)})"
            else:
                trigger = make_trigger(options.trigger_cmd, options.trigger_url)
                facility = FacilityUnderTest(
                    options.facility, options.username or f"{options.facility}_BV", options.password
                )
                lanes, facilities, material = vendor_lanes(
                    trigger, facility, options.cert, list(options.trust), list(options.crl)
                )
            try:
                # the vendor's portal gets its clock and fault plans back, also after a failure or Ctrl-C
                with restoring(admin, tuple(f.code for f in facilities)):
                    notes = provision(admin, facilities, material, reuse=options.reuse_facility)
                    runner = Runner(
                        admin,
                        lanes,
                        listeners=listeners,
                        rate=options.clock_rate,
                        seed=options.seed,
                        trigger_description=description,
                        scenario_timeout=options.timeout,
                        order_portal=options.order_portal or options.reference,
                        settle=lasting,
                    )
                    runner.notes += notes
                    return runner.run(specs)
            finally:
                if hospitals is not None:
                    hospitals.stop()
