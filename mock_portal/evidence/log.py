"""Read an exchange log: JSON Lines, one send to the real portal a line (docs/field-evidence.md, section 2).

Streamed: a log of a year's sends may be large, so one line at a time is read, each bounded
(`line_limit`), and every line becomes a `LoggedSend` or a `LineError` with a stable code; a bad line
never stops the run. The messages of a `LineError` name the field at fault, never its value (a value
may be a name or an ID number). `password`, `token` and `id_token` in `form` are not read at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import IO, Any, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from mock_portal.evidence.judge import Sent

LINE_SLACK = 64 * 1024
"""Room on a line for everything but the file: the form's other fields, the reply, the keys."""
_NAIVE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?")


def line_limit(max_file_bytes: int) -> int:
    """The longest line read: the base64 of the largest file the portal takes, an eighth more for how a
    JSON writer may spell it (PHP's `json_encode` writes "/" as "\\/", MIME base64 breaks lines every 76
    characters, "\\r\\n" in JSON), and `LINE_SLACK`."""
    encoded = (max_file_bytes + 2) // 3 * 4
    return encoded + encoded // 8 + LINE_SLACK


@dataclass(frozen=True)
class LineError:
    """A line that cannot be re-judged, and why; the message names the field, never its value."""

    line: int
    code: str
    message_vi: str
    message_en: str

    def to_dict(self) -> dict[str, object]:
        return {"line": self.line, "code": self.code, "message_vi": self.message_vi, "message_en": self.message_en}


@dataclass(frozen=True)
class LoggedSend:
    """A line of the log that can be judged again."""

    line: int
    sent: Sent
    real: str
    """What came back: MaKetQua, or `timeout`, `reset`, `http_502` when no JSON reply came."""
    id: str | None = None
    """The hospital system's own key of the send, when the log gives one."""


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(files("mock_portal.evidence").joinpath("exchange.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def fits_schema(entry: object) -> bool:
    """True when `entry` passes the log's schema (the shadow proxy checks each line before it writes it)."""
    return bool(_validator().is_valid(entry))


def read_log(log: IO[bytes], *, folder: Path, max_file_bytes: int) -> Iterator[LoggedSend | LineError]:
    """Each non-blank line of `log` as a send or an error, in order; `file` paths are read inside `folder`
    (the log's own folder), each file at most `max_file_bytes`."""
    limit = line_limit(max_file_bytes)
    inside = folder.resolve()
    for number, raw in enumerate(_lines(log, limit), start=1):
        if raw is None:
            yield LineError(number, "LOG_LINE_TOO_LONG", *_too_long(limit))
        elif raw.strip():
            yield _parse(number, raw, inside, max_file_bytes)


def _lines(log: IO[bytes], limit: int) -> Iterator[bytes | None]:
    """The lines of `log`, None for one longer than `limit` (read past in pieces, never held whole)."""
    while raw := log.readline(limit + 1):
        if len(raw) > limit and not raw.endswith(b"\n"):
            while (rest := log.readline(limit)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield raw


def _parse(number: int, raw: bytes, folder: Path, max_file_bytes: int) -> LoggedSend | LineError:
    try:
        text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        return LineError(
            number, "LOG_NOT_UTF8", f"Dòng không phải UTF-8 (byte {exc.start}).", f"Not UTF-8 (byte {exc.start})."
        )
    try:
        entry = json.loads(text)
    except (ValueError, RecursionError) as exc:
        where = f" (column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        return LineError(
            number, "LOG_NOT_JSON", f"Dòng không phải JSON{where}.", f"Not JSON{where}: one JSON object a line."
        )
    problem = best_match(_validator().iter_errors(entry))
    if problem is not None:
        return _schema_error(number, problem)
    code = _reply_code(entry["reply"])
    if code is None:
        vi, en = _FORMS["reply.MaKetQua"]
        return LineError(number, "LOG_SCHEMA", f"reply.MaKetQua: {vi}.", f"reply.MaKetQua: {en}.")
    sent_at = _instant(entry["sent_at"])
    if sent_at is None:
        return LineError(
            number,
            "LOG_TIME_INVALID",
            f"sent_at không phải thời điểm có thật (ngày, giờ ngoài phạm vi; năm {YEARS[0]}-{YEARS[-1]}).",
            f"sent_at is no real instant (a day or hour out of range; a year {YEARS[0]}-{YEARS[-1]}).",
        )
    file = _file(number, entry, folder, max_file_bytes)
    if isinstance(file, LineError):
        return file
    form = entry["form"]
    return LoggedSend(
        number,
        Sent(
            facility_code=form["maCskcb"],
            loai_hs=form["loaiHs"],
            file_b64=file,
            sent_at=sent_at,
            real_code=code,
        ),
        real=code or _failure(entry),
        id=entry.get("id"),
    )


_DIGITS = re.compile(r"[0-9]{1,6}")


def _reply_code(reply: dict[str, Any] | None) -> str | None:
    """MaKetQua as ASCII digits ("" for no reply); None for one the schema's pattern lets through but is no
    code: JSON Schema patterns search, so "200\\n" matches `^[0-9]{1,6}$`, and 200.0 counts as an integer."""
    if reply is None:
        return ""
    code = reply["MaKetQua"]
    if not isinstance(code, str):
        return str(int(code))
    return code if _DIGITS.fullmatch(code) else None


def _failure(entry: dict[str, Any]) -> str:
    """How no JSON reply came, as one label: `timeout`, `reset`, `http_502`."""
    if entry["failure"] == "http":
        return f"http_{entry['http_status']}"
    return str(entry["failure"])


YEARS = range(2000, 2101)
"""The years a `sent_at` may name: the portal is of this century, and an instant at the calendar's ends
(year 1, year 9999) overflows the moment it is moved to another offset."""


def _instant(text: str) -> datetime | None:
    """`sent_at` (its form checked by the schema, so it has an offset) as an aware datetime; None for a
    day or hour that does not exist, or a year outside `YEARS`."""
    try:
        instant = datetime.fromisoformat(text.upper().replace(" ", "T"))
    except ValueError:
        return None
    return instant if instant.year in YEARS else None


def _file(number: int, entry: dict[str, Any], folder: Path, max_bytes: int) -> str | LineError:
    """The file as base64, as `judge` takes it: the form's own, or the `file` read inside `folder`, checked
    against `file_sha256` when the log gives it."""
    form, expected = entry["form"], entry.get("file_sha256")
    if "fileBase64Str" in form:
        encoded: str = form["fileBase64Str"]
        data = _decoded(encoded) if expected else None
    elif "file" in form:
        read = _read_inside(number, form["file"], folder, max_bytes)
        if isinstance(read, LineError):
            return read
        data, encoded = read, base64.b64encode(read).decode("ascii")
    else:
        return LineError(number, "LOG_NO_FILE", *_no_file(bool(expected)))
    if expected and data is not None and hashlib.sha256(data).hexdigest() != expected.lower():
        return LineError(
            number,
            "LOG_HASH_MISMATCH",
            "Tệp không khớp file_sha256 của dòng: không phải tệp đã gửi.",
            "The file does not match the line's file_sha256: it is not the file that was sent.",
        )
    return encoded


def _decoded(encoded: str) -> bytes | None:
    """The bytes of a base64 the portal would decode; None when it would not (then the sandbox says so)."""
    try:
        return base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError):
        return None


def _read_inside(number: int, name: str, folder: Path, max_bytes: int) -> bytes | LineError:
    """The file `name` names, refused unless it is a regular file inside `folder` of at most `max_bytes`."""
    relative = Path(name.replace("\\", "/"))  # a Windows system may write its separators
    try:
        full = (folder / relative).resolve()
        outside = relative.is_absolute() or ".." in relative.parts or not full.is_relative_to(folder)
        if outside:
            return LineError(number, "LOG_FILE_OUTSIDE", *_OUTSIDE)
        status = full.stat()
        if not stat.S_ISREG(status.st_mode):
            return LineError(number, "LOG_FILE_UNREADABLE", *_unreadable("not a regular file"))
        if status.st_size > max_bytes:
            return LineError(number, "LOG_FILE_TOO_LARGE", *_too_large(status.st_size, max_bytes))
        with full.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        return LineError(
            number,
            "LOG_FILE_MISSING",
            "Không có tệp form.file trong thư mục của nhật ký.",
            "form.file: no such file in the log's folder.",
        )
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        return LineError(number, "LOG_FILE_UNREADABLE", *_unreadable(getattr(exc, "strerror", None) or "bad name"))
    if len(data) > max_bytes:  # grew since it was looked at
        return LineError(number, "LOG_FILE_TOO_LARGE", *_too_large(len(data), max_bytes))
    return data


def _too_long(limit: int) -> tuple[str, str]:
    return (
        f"Dòng dài quá {limit} byte (base64 của tệp lớn nhất cổng nhận, thêm phần dư): bỏ qua.",
        f"Line longer than {limit} bytes (the base64 of the largest file the portal takes, with room): skipped.",
    )


def _no_file(has_hash: bool) -> tuple[str, str]:
    if has_hash:
        return (
            "Dòng chỉ có file_sha256, không có tệp (form.fileBase64Str hoặc form.file): không chấm lại được.",
            "The line has file_sha256 but no file (form.fileBase64Str or form.file): it cannot be re-judged.",
        )
    return (
        "Dòng không có tệp (form.fileBase64Str hoặc form.file).",
        "The line has no file (form.fileBase64Str or form.file).",
    )


_OUTSIDE = (
    "form.file phải là đường dẫn tương đối nằm trong thư mục của nhật ký (không '..', không đường dẫn tuyệt đối).",
    "form.file must be a relative path inside the log's folder (no '..', no absolute path, no link out of it).",
)


def _unreadable(why: str) -> tuple[str, str]:
    return (f"Không đọc được tệp form.file ({why}).", f"form.file cannot be read ({why}).")


def _too_large(size: int, limit: int) -> tuple[str, str]:
    return (
        f"Tệp form.file {size} byte, lớn hơn giới hạn {limit} byte (PORTAL_MAX_FILE_BYTES).",
        f"form.file is {size} bytes, over the limit of {limit} bytes (PORTAL_MAX_FILE_BYTES).",
    )


def _schema_error(number: int, error: ValidationError) -> LineError:
    """LOG_SCHEMA naming the field and what it should be, from the schema alone (never the value); a
    `sent_at` without an offset is LOG_TIME_NAIVE."""
    field = ".".join(str(step) for step in error.absolute_path)
    rule, wanted, instance = str(error.validator), cast(Any, error.validator_value), cast(Any, error.instance)
    if rule == "required":
        missing = next(name for name in wanted if name not in instance)
        field = f"{field}.{missing}" if field else missing
        return LineError(number, "LOG_SCHEMA", f"Thiếu trường {field}.", f"{field} is missing.")
    if field == "sent_at" and isinstance(instance, str) and _NAIVE.fullmatch(instance):
        return LineError(
            number,
            "LOG_TIME_NAIVE",
            "sent_at không có múi giờ: ghi kèm độ lệch (+07:00) theo RFC 3339.",
            "sent_at has no offset: write it with one (+07:00), RFC 3339.",
        )
    vi, en = _SHOULD.get(rule, ("không đúng lược đồ", "does not match the schema"))
    if rule in ("pattern", "oneOf") and field in _FORMS:
        vi, en = _FORMS[field]
    elif rule in ("type", "enum", "maxLength", "minLength", "minimum", "maximum"):
        said = json.dumps(wanted, ensure_ascii=False)  # the schema's word, never the line's value
        vi, en = f"{vi} {said}", f"{en} {said}"
    name = field or "the line"
    return LineError(number, "LOG_SCHEMA", f"{field or 'dòng'}: {vi}.", f"{name}: {en}.")


_FORMS = {
    "sent_at": (
        "phải theo RFC 3339, có độ lệch: 2026-03-02T09:15:00+07:00",
        "must be RFC 3339 with an offset: 2026-03-02T09:15:00+07:00",
    ),
    "reply": ("phải là đối tượng JSON có MaKetQua, hoặc null", "must be a JSON object with MaKetQua, or null"),
    "reply.MaKetQua": ("phải là mã gồm chữ số (chuỗi hoặc số)", "must be a code of digits (a string or a number)"),
    "file_sha256": ("phải là SHA-256 dạng hex (64 ký tự)", "must be a SHA-256 in hex (64 characters)"),
}
"""The form a field's pattern asks for, said without the schema's regular expression."""
_SHOULD: dict[str, tuple[str, str]] = {
    "type": ("phải có kiểu", "must be of type"),
    "enum": ("phải là một trong", "must be one of"),
    "maxLength": ("dài quá; tối đa", "too long; at most"),
    "minLength": ("ngắn quá; tối thiểu", "too short; at least"),
    "minimum": ("nhỏ quá; tối thiểu", "too small; at least"),
    "maximum": ("lớn quá; tối đa", "too large; at most"),
    "pattern": ("sai dạng (xem lược đồ exchange.schema.json)", "has not the expected form (see exchange.schema.json)"),
    "oneOf": ("sai dạng (xem lược đồ exchange.schema.json)", "has not the expected form (see exchange.schema.json)"),
    "not": ("chỉ một trong fileBase64Str và file", "give one of fileBase64Str and file, not both"),
}
