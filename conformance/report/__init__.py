"""Reporters: separate consumers of the runner's events (text, JUnit XML, JSON, one HTML page).

`FileReports(directory)` writes `junit.xml`, `report.json`, `report.html` and `evidence.jsonl`
(for `conformance replay`) when the run finishes, and seals them into a bundle the portal that served the
run attests (`conformance.certificate`, checked by `conformance verify`); `TextReporter` prints progress as it happens.
"""

from __future__ import annotations

from pathlib import Path

from conformance.certificate import seal
from conformance.events import Event, RunFinished, RunStarted
from conformance.evidence import dump
from conformance.report.html_report import write_html
from conformance.report.json_report import write_json
from conformance.report.junit import write_junit
from conformance.report.text import TextReporter

__all__ = ["FileReports", "TextReporter", "write_html", "write_json", "write_junit"]


class FileReports:
    """Writes every file report into `directory` at the end of the run."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: RunStarted | None = None
        self.written: list[Path] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.started = event
        elif isinstance(event, RunFinished):
            self.directory.mkdir(parents=True, exist_ok=True)
            self.written = [
                write_junit(event, self.directory / "junit.xml"),
                write_json(event, self.directory / "report.json"),
                write_html(event, self.directory / "report.html"),
                dump(event.bundle, self.directory / "evidence.jsonl"),
            ]
            self.written.append(seal(self.directory, event.bundle, event.witness))
