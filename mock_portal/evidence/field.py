"""The field-evidence file: judged real sends a vendor can share, with no personal data by construction.

A versioned JSON document (`field-evidence.schema.json`, docs/field-evidence.md section 3): the format
and its version, the sandbox version that judged the sends, the day the file was made, counts by real
code and document type, and the records (`EvidenceRecord.to_dict()`). The schema names every key
(`additionalProperties: false` everywhere) and holds every string to a pattern — codes, paths of element
names, days, hex hashes — so a file that validates has no room for a name, an ID number, a token or any
other free text. The writer withholds (and counts) a record the schema would refuse, so what it writes
always loads; the loader refuses a file that is not one with one message naming the file and the problem,
never quoting the file's values.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from mock_portal import sandbox_version
from mock_portal.config import Settings, SettingsError
from mock_portal.evidence.record import VIETNAM, EvidenceRecord, FindingRecord
from mock_portal.evidence.tally import Tally, tally

FORMAT = "vn-civil-cert-sandbox/field-evidence"
VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("field-evidence.schema.json")
MAX_FILE_BYTES = 8 * 1024 * 1024
"""Largest evidence file read: ~23,000 sends at the 359 bytes a record of one to three findings took; such a
file loaded in 4.2-6.1 s on the 2-core VM (validation is most of it). More sends: several files."""
NONE = "none"
"""The counts' key for a send with no reply, or a file that stated no document type."""

Json = dict[str, Any]


class EvidenceFileError(ValueError):
    """A file that is not a field-evidence file this sandbox reads: the message names the file and what is
    wrong, never a value from it."""


@cache
def schema() -> Json:
    loaded: Json = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded


def _whole_match(
    validator: jsonschema.protocols.Validator, pattern: str, instance: Any, _: Any
) -> Iterator[ValidationError]:
    """`pattern` held to the whole string: JSON Schema's search lets `$` match before a final newline, so
    `"200\\n"` would pass `^[0-9]{1,4}$` (and break every table it is printed in)."""
    if validator.is_type(instance, "string") and re.fullmatch(pattern, instance) is None:
        yield ValidationError("does not match the pattern")


_extend: Any = jsonschema.validators.extend  # the stubs leave it unannotated
_Validator: type[jsonschema.Draft202012Validator] = _extend(jsonschema.Draft202012Validator, {"pattern": _whole_match})


@cache
def _validator(definition: str | None = None) -> jsonschema.Draft202012Validator:
    """The validator of the whole file, or of one of its `$defs` (a record, for the writer), with every
    `$ref` replaced by what it names: resolving them as it goes made validation 2.6 times slower."""
    whole = schema()
    return _Validator(_inlined(whole if definition is None else whole["$defs"][definition]))


def _inlined(node: Any) -> Any:
    """`node` of the schema with each `{"$ref": "#/$defs/NAME"}` replaced by that definition (none is recursive)."""
    if isinstance(node, list):
        return [_inlined(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inlined(schema()["$defs"][node["$ref"].removeprefix("#/$defs/")])
    return {key: _inlined(value) for key, value in node.items() if key != "$defs"}


def _written_version() -> str:
    """The sandbox's version as the schema takes it: a local label too long for it (a development build's
    `+g1a2b3c4.d20261207`) is left out, so that what the writer writes always loads."""
    fits = schema()["properties"]["sandbox_version"]["pattern"]
    installed = sandbox_version()
    public = installed.split("+", 1)[0]
    return next((v for v in (installed, public) if re.fullmatch(fits, v)), "0+unknown")


def _counts(records: list[Json], withheld: int) -> Json:
    return {
        "records": len(records),
        "withheld": withheld,
        "by_real_code": dict(sorted(Counter(r["real_code"] or NONE for r in records).items())),
        "by_doc_type": dict(sorted(Counter(r["doc_type"] or NONE for r in records).items())),
    }


def evidence_document(records: Iterable[EvidenceRecord], *, made_on: date | None = None) -> Json:
    """The evidence file of `records` as data. A record the schema refuses (a loaiHs that is not digits, a
    path with a namespace URI in it) is withheld and counted, never written."""
    kept, withheld = [], 0
    record_schema = _validator("record")
    for record in records:
        item = record.to_dict()
        if record_schema.is_valid(item):
            kept.append(item)
        else:
            withheld += 1
    return {
        "format": FORMAT,
        "version": VERSION,
        "sandbox_version": _written_version(),
        "made_on": (made_on or datetime.now(VIETNAM).date()).isoformat(),
        "counts": _counts(kept, withheld),
        "records": kept,
    }


def write_evidence(records: Iterable[EvidenceRecord], *, made_on: date | None = None) -> bytes:
    """The evidence file of `records` (`rejudge --export`): UTF-8 JSON, one record a line (a reviewer
    reads it, a diff shows what changed)."""
    document = evidence_document(records, made_on=made_on)
    items = [json.dumps(item, ensure_ascii=False, separators=(", ", ": ")) for item in document.pop("records")]
    head = json.dumps(document, ensure_ascii=False, indent=1).removesuffix("\n}")
    listed = "\n  " + ",\n  ".join(items) + "\n " if items else ""
    return f'{head},\n "records": [{listed}]\n}}\n'.encode()


PART_BYTES = MAX_FILE_BYTES - 64 * 1024
"""A part's records stop short of the loader's limit, leaving room for the head and the counts."""


class EvidenceExport:
    """`rejudge --export FILE`: a run's records written as they come, each file under the loader's limit
    (FILE, then FILE-2.json, FILE-3.json, ... for a log too large for one), so memory holds one part at most."""

    def __init__(self, path: Path, *, made_on: date | None = None) -> None:
        self.path = path
        self.made_on = made_on
        self.written: list[Path] = []
        self._records: list[EvidenceRecord] = []
        self._bytes = 0

    def add(self, record: EvidenceRecord) -> None:
        size = len(json.dumps(record.to_dict(), ensure_ascii=False)) + 4
        if self._records and self._bytes + size > PART_BYTES:
            self._flush()
        self._records.append(record)
        self._bytes += size

    def close(self) -> list[Path]:
        """Writes what is left (an empty file for a run with no send) and names every file written."""
        if self._records or not self.written:
            self._flush()
        return self.written

    def _flush(self) -> None:
        part = len(self.written) + 1
        path = self.path if part == 1 else self.path.with_name(f"{self.path.stem}-{part}{self.path.suffix}")
        path.write_bytes(write_evidence(self._records, made_on=self.made_on))
        self.written.append(path)
        self._records, self._bytes = [], 0


# --- reading ---


@dataclass(frozen=True)
class FieldEvidence:
    """The sends of one or more evidence files, each counted once."""

    records: tuple[EvidenceRecord, ...]
    files: tuple[str, ...]
    duplicates: int
    """Records left out as the same send seen again (same file hash, day and real code), in one file or
    across files."""
    withheld: int
    """Records the files' writers withheld (the schema would have refused them)."""
    sandbox_versions: tuple[str, ...]

    def tally(self) -> Tally:
        return tally(self.records)


def load_evidence(paths: Iterable[str | Path]) -> FieldEvidence:
    """The sends of the evidence files at `paths`, merged; `EvidenceFileError` for the first file that is
    not one."""
    records: list[EvidenceRecord] = []
    seen: set[tuple[str, str, str]] = set()
    files, versions, duplicates, withheld = [], set(), 0, 0
    for path in paths:
        document = _read(Path(path))
        files.append(str(path))
        versions.add(document["sandbox_version"])
        withheld += document["counts"]["withheld"]
        for item in document["records"]:
            record = _record(item)
            key = (record.file_sha256, record.day, record.real_code)
            if record.file_sha256 and key in seen:
                duplicates += 1
                continue
            seen.add(key)
            records.append(record)
    return FieldEvidence(tuple(records), tuple(files), duplicates, withheld, tuple(sorted(versions)))


def loaded_field_evidence(settings: Settings) -> FieldEvidence | None:
    """The evidence files `PORTAL_FIELD_EVIDENCE` names (None when it names none); a file that is not one
    stops the start like any bad setting (`SettingsError` naming the variable and the file)."""
    paths = settings.field_evidence_files
    if not paths:
        return None
    try:
        return load_evidence(paths)
    except EvidenceFileError as exc:
        raise SettingsError([f"PORTAL_FIELD_EVIDENCE={settings.field_evidence!r}: {exc}"]) from None


def _record(item: Json) -> EvidenceRecord:
    findings = tuple(FindingRecord(f["code"], f["path"], f["portal"], f["strict"]) for f in item["findings"])
    sandbox = item["sandbox"]
    return EvidenceRecord(
        doc_type=item["doc_type"],
        loai_hs=item["loai_hs"],
        day=item["day"],
        real_code=item["real_code"],
        portal_code=sandbox["portal"],
        strict_code=sandbox["strict"],
        findings=findings,
        file_sha256=item["file_sha256"],
    )


def _read(path: Path) -> Json:
    """The document in `path`, checked against the schema and against itself."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise EvidenceFileError(f"{path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise EvidenceFileError(f"{path}: larger than {MAX_FILE_BYTES} bytes; split it into several files")
    try:
        document: Json = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as exc:
        raise EvidenceFileError(f"{path}: not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise EvidenceFileError(f"{path}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:  # what the format nests is four deep; a reader must not die of a hostile file
        raise EvidenceFileError(f"{path}: nested too deeply to be a field-evidence file") from None
    except _DuplicateKeyError as exc:
        raise EvidenceFileError(f"{path}: {exc}") from None
    _check_format(path, document)
    error = best_match(_validator().iter_errors(document))
    if error is not None:
        raise EvidenceFileError(f"{path}: {_problem(error)} ({SCHEMA_FILE.name})")
    _check_consistent(path, document)
    return document


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> Json:
    """An object of the file; a key given twice is refused (json keeps the last: the first, with whatever
    it held, would pass unseen)."""
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _DuplicateKeyError("an object gives one of its keys twice")
    return dict(pairs)


def _check_format(path: Path, document: object) -> None:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise EvidenceFileError(f'{path}: not a field-evidence file (no "format": "{FORMAT}")')
    if document.get("version") != VERSION:
        given = document.get("version")
        shown = given if isinstance(given, int) and not isinstance(given, bool) else "unknown"
        raise EvidenceFileError(f"{path}: format version {shown}; this sandbox reads version {VERSION}")


def _check_consistent(path: Path, document: Json) -> None:
    """Counts that match the records, and days of the calendar."""
    records, counts = document["records"], document["counts"]
    if counts != _counts(records, counts["withheld"]):
        raise EvidenceFileError(f"{path}: its counts do not match its records")
    days = [("made_on", document["made_on"])] + [(f"records/{n}/day", r["day"]) for n, r in enumerate(records)]
    for where, day in days:
        try:
            date.fromisoformat(day)
        except ValueError:
            raise EvidenceFileError(f"{path}: {where} is not a day of the calendar") from None


def _problem(error: ValidationError) -> str:
    """What is wrong and where, in the schema's words: never the value (it may be what must not be there)."""
    where = "/".join(str(step) for step in error.absolute_path) or "the top level"
    keyword, expected = error.validator, error.validator_value
    expected_keys = expected if isinstance(expected, list) else []
    rule: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if keyword == "additionalProperties":
        allowed = sorted(rule.get("properties", {}))
        if allowed:
            return f"{where} has a key the format does not have (it has only {', '.join(allowed)})"
        return f"{where} has a key that is not a code"
    if keyword == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        return f"{where} lacks {', '.join(key for key in expected_keys if key not in instance)}"
    if keyword == "pattern":
        return f"{where} is not {rule.get('description', 'in the format')}"
    if keyword == "type":
        return f"{where} is not of type {json.dumps(expected)}"
    if keyword == "enum":
        return f"{where} is not one of {json.dumps(expected)}"
    if keyword == "not" and isinstance(expected, Mapping) and "description" in expected:
        return f"{where} breaks a rule of the format: {expected['description']}"
    return f"{where} breaks the schema's {keyword}: {json.dumps(expected)}"
