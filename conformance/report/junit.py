"""JUnit XML: one testsuite per area, one testcase per case ID, so CI tools show the catalogue.

FAIL of a MUST case is a `<failure>`; FAIL of a SHOULD case is reported as a failure too, typed
`SHOULD`, so dashboards can filter it; SKIP/OMIT are `<skipped>`, ERROR is `<error>`; INCONCLUSIVE
(the machine's timing could not settle it) is `<skipped type="inconclusive">`, and the run's
`portal_compatible` property says `inconclusive`.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from conformance.events import RunFinished
from conformance.model import CaseVerdict
from conformance.outcome import summary
from conformance.registry import AREAS
from conformance.report.common import details, reproduce


def write_junit(finished: RunFinished, path: Path) -> Path:
    suites = ET.Element("testsuites", name="conformance", time=f"{finished.seconds:.3f}")
    info = summary(finished.results)
    overall = ET.SubElement(suites, "properties")
    for key in ("portal_compatible", "strict_clean"):
        ET.SubElement(overall, "property", name=key, value=info[key]["verdict"])
    for number, group in enumerate(info["root_causes"], 1):
        then = ", ".join(c["case"] for c in group["consequences"])
        value = f"{group['case']}: {group['message']}" + (f" (and because of it: {then})" if then else "")
        ET.SubElement(overall, "property", name=f"root_cause_{number}", value=value)
    caused_by = {c["case"]: g["case"] for g in info["root_causes"] for c in g["consequences"]}
    for area in AREAS:
        results = [r for r in finished.results if r.area == area]
        if not results:
            continue
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=area,
            tests=str(len(results)),
            failures=str(sum(r.verdict is CaseVerdict.FAIL for r in results)),
            errors=str(sum(r.verdict is CaseVerdict.ERROR for r in results)),
            skipped=str(
                sum(r.verdict in (CaseVerdict.SKIP, CaseVerdict.OMIT, CaseVerdict.INCONCLUSIVE) for r in results)
            ),
            time=f"{sum(r.duration_ms for r in results) / 1000:.3f}",
        )
        for result in results:
            item = ET.SubElement(
                suite,
                "testcase",
                classname=f"conformance.{area}",
                name=f"{result.case_id} {result.title}",
                time=f"{result.duration_ms / 1000:.3f}",
            )
            properties = ET.SubElement(item, "properties")
            facts: tuple[tuple[str, str], ...] = (
                ("id", result.case_id),
                ("level", result.level.value),
                ("basis", result.basis),
                ("grade", result.grade),
                ("result", result.result),
            )
            if result.case_id in caused_by:
                facts += (("caused_by", caused_by[result.case_id]),)
            for name, value in facts:
                ET.SubElement(properties, "property", name=name, value=value)
            body = "\n".join([*details(result), *reproduce(result, finished.bundle)])
            if result.verdict is CaseVerdict.FAIL:
                ET.SubElement(item, "failure", message=result.message, type=result.level.value).text = body
            elif result.verdict is CaseVerdict.ERROR:
                ET.SubElement(item, "error", message=result.message, type="HarnessError").text = body
            elif result.verdict in (CaseVerdict.SKIP, CaseVerdict.OMIT):
                ET.SubElement(item, "skipped", message=result.message)
            elif result.verdict is CaseVerdict.INCONCLUSIVE:
                ET.SubElement(item, "skipped", message=result.message, type="inconclusive").text = body
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
    return path
