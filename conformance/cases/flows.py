"""Flow cases (FLOW-*): the stories of Circular 22/2025 and 25/2025 end to end, from order to portal.

Each case finds the orders of one story, then the documents the portal accepted for them (through
the expectation the harness registered), and compares what arrived with what was asked for. When
nothing of a story arrived the case is skipped: lateness and loss are the deadline cases' verdicts,
so one broken behaviour fails the case that names it, not every case downstream of it.
"""

from __future__ import annotations

import unicodedata

from conformance.evidence import Bundle, Json, Order
from conformance.model import CaseFinding
from conformance.registry import CaseOutcome, SkipCase, case, verdict_of
from mock_portal.results.grades import Grade

GCS = "Circular 22/2025 (GCS)"
GBT = "Circular 25/2025 (GBT Mẫu 05)"
NEEDS = ("orders", "expectations")


def _story(bundle: Bundle, story: str) -> list[Order]:
    orders = [o for o in bundle.calm_orders() if o.story == story and o.deliver]
    if not orders:
        raise SkipCase(f"no '{story}' order was sent in the fault-free scenario of this run")
    return orders


def _fields(bundle: Bundle, order: Order) -> Json | None:
    expectation = bundle.expectation(order.expectation_id) or {}
    return (expectation.get("document") or {}).get("fields")


def _arrived(bundle: Bundle, orders: list[Order]) -> tuple[list[tuple[Order, Json]], list[CaseFinding]]:
    found, missing = [], []
    for order in orders:
        fields = _fields(bundle, order)
        if fields is None:
            missing.append(
                CaseFinding(f"{order.code} ({order.story}) was never accepted", request_ids=(order.request_id,))
            )
        else:
            found.append((order, fields))
    if not found:
        raise SkipCase(f"none of the {len(orders)} '{orders[0].story}' certificate(s) arrived: see DL-001")
    return found, missing


def _outcome(problems: list[CaseFinding], orders: list[Order], message: str) -> CaseOutcome:
    requests = [o.request_id for o in orders]
    return verdict_of(problems, message, requests=requests)


@case(
    id="FLOW-001",
    grade=Grade.ADVISORY,
    title="Twins give two certificates with distinct MA_GCS and SO_CON=2",
    basis=GCS,
    area="flows",
    needs=NEEDS,
)
def twins(bundle: Bundle) -> CaseOutcome:
    orders = _story(bundle, "gcs_twins")
    found, problems = _arrived(bundle, orders)
    codes = [fields["MA_GCS"] for _, fields in found]
    if len(found) == len(orders) and len(set(codes)) != len(codes):
        problems.append(CaseFinding(f"twins share MA_GCS {codes}", request_ids=tuple(o.request_id for o, _ in found)))
    problems += [
        CaseFinding(f"{f['MA_GCS']}: SO_CON={f.get('SO_CON')!r}, expected '2'", request_ids=(o.request_id,))
        for o, f in found
        if f.get("SO_CON") != "2"
    ]
    return _outcome(problems, orders, f"{len(found)} twin certificates, distinct MA_GCS, SO_CON=2")


@case(
    id="FLOW-002",
    grade=Grade.ADVISORY,
    title="A reissue keeps MA_GCS with CAP_LAN_DAU=0",
    basis=GCS + " (cấp lại)",
    area="flows",
    needs=NEEDS,
)
def reissue(bundle: Bundle) -> CaseOutcome:
    orders = _story(bundle, "gcs_reissue")
    found, problems = _arrived(bundle, orders)
    again = [(o, f) for o, f in found if o.data.get("CAP_LAN_DAU") == "0"]
    if not problems and not again:
        problems.append(CaseFinding("no reissue arrived", request_ids=tuple(o.request_id for o in orders)))
    for order, fields in again:
        if fields.get("MA_GCS") != order.code or fields.get("CAP_LAN_DAU") != "0":
            problems.append(
                CaseFinding(
                    f"reissue arrived as {fields.get('MA_GCS')} with CAP_LAN_DAU={fields.get('CAP_LAN_DAU')!r}",
                    request_ids=(order.request_id,),
                )
            )
    return _outcome(problems, orders, "the reissue kept MA_GCS with CAP_LAN_DAU=0")


def _fields_present(bundle: Bundle, story: str, prefix_or_names: tuple[str, ...], what: str) -> CaseOutcome:
    """Every field of the story's group that the order fills arrived filled. Whether it arrived with exactly
    the ordered value is FLOW-005's question, so one defect fails the case that names it."""
    orders = _story(bundle, story)
    found, problems = _arrived(bundle, orders)
    for order, fields in found:
        wanted = {k: v for k, v in order.data.items() if v and any(k == n or k.endswith(n) for n in prefix_or_names)}
        if not wanted:
            problems.append(
                CaseFinding(f"{order.code}: the order itself has no {what}", request_ids=(order.request_id,))
            )
        problems += [
            CaseFinding(f"{order.code}: {k} missing or empty, ordered {v!r}", request_ids=(order.request_id,))
            for k, v in wanted.items()
            if not fields.get(k)
        ]
    return _outcome(problems, orders, f"{what} arrived")


@case(
    id="FLOW-003",
    grade=Grade.ADVISORY,
    title="A surrogacy birth includes the _MTH and _CHA_MTH groups",
    basis=GCS + " Mẫu 02 (mang thai hộ)",
    area="flows",
    needs=NEEDS,
)
def surrogacy(bundle: Bundle) -> CaseOutcome:
    return _fields_present(
        bundle, "gcs_surrogacy", ("_MTH",), "surrogate mother (_MTH) and her husband (_CHA_MTH) groups"
    )


@case(
    id="FLOW-004",
    grade=Grade.ADVISORY,
    title="An inpatient death carries its admission time (NGAYGIO_VV) and record (MA_HSBA)",
    basis=GBT,
    area="flows",
    needs=NEEDS,
)
def inpatient(bundle: Bundle) -> CaseOutcome:
    return _fields_present(bundle, "gbt_inpatient", ("NGAYGIO_VV", "MA_HSBA"), "admission time and medical record")


@case(
    id="FLOW-005",
    grade=Grade.RECONSTRUCTED,
    title="The data that reached the portal is what the harness asked to issue",
    basis=GCS + "; " + GBT,
    area="flows",
    needs=NEEDS,
)
def data_as_ordered(bundle: Bundle) -> CaseOutcome:
    orders = [o for o in bundle.calm_orders() if o.deliver]
    if not orders:
        raise SkipCase("no order of the fault-free scenario was meant to be delivered")
    problems = []
    for order in orders:
        fields = _fields(bundle, order)
        if fields is None:
            continue
        diff = sorted(k for k, v in order.data.items() if (fields.get(k) or "") != v)
        if diff:
            shown = ", ".join(_difference(k, fields.get(k) or "", order.data[k]) for k in diff[:4])
            problems.append(CaseFinding(f"{order.code}: {shown}", request_ids=(order.request_id,)))
    ordered = {o.code for o in bundle.orders}
    facilities = {s.facility for s in bundle.scenarios}
    problems += [
        CaseFinding(
            f"submission {s['id']} carries {s['document_code']}, which the harness never ordered",
            submission_ids=(s["id"],),
        )
        for s in bundle.submissions
        if s.get("facility") in facilities and s.get("document_code") and s["document_code"] not in ordered
    ]
    if not problems and not any(_fields(bundle, o) for o in orders):
        raise SkipCase("no ordered certificate arrived, so no data to compare (see DL-001)")
    return _outcome(problems, orders, "every accepted certificate carries exactly the ordered data")


def _difference(name: str, arrived: str, ordered: str) -> str:
    """One field that did not arrive as ordered; text that differs only in its Unicode form looks the same
    when printed, so the message names the form instead."""
    if unicodedata.normalize("NFC", arrived) == ordered:
        return f"{name} in decomposed Unicode (NFD: combining marks), ordered in NFC ({ordered!r})"
    return f"{name}={arrived!r} (ordered {ordered!r})"
