"""The documentation works: the signing recipes of docs/signature-profile.md run and their files are accepted,
the repository refers to nothing outside itself, and the Makefile serves without the test tools."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from lxml import etree

from conformance.cases import load_cases
from fixtures.certificates import build_xml, scenario
from fixtures.demo import DEMO, ensure_pki
from mock_portal.documents import DocumentType, parse_xml, validate_schema
from mock_portal.fidelity import with_field_tables
from mock_portal.results.findings import Severity
from mock_portal.results.grades import Strictness
from mock_portal.signature.names import same_name
from mock_portal.signature.xmldsig import DS_NS
from tests import contract_cli
from tests.markdown_blocks import blocks

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "docs" / "signature-profile.md"
# The team's notebook outside the repository, named in pieces so this file does not name it itself.
NOTEBOOK = (("../", "shared"), ("DESIGN", ".md"), ("vn-portal", "-notes"))
OUTSIDE = re.compile("|".join(re.escape(a + b) for a, b in NOTEBOOK))


@pytest.fixture()
def checkout(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A scratch directory laid out like the repository root after `make serve` (venv, examples, var/demo);
    an indirect parameter names the demo facility (its certificate's subject) instead."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    ensure_pki(tmp_path / "var" / "demo", getattr(request, "param", DEMO))
    return tmp_path


def _run(checkout: Path, command: list[str], script: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    return subprocess.run(
        command, input=script, cwd=checkout, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="xmlsec1 is not installed (make xmlsec1)")
@pytest.mark.parametrize(
    "checkout",
    # Issue 25: a subject with RFC 4514's `\,`, and `&` and `<` (XML escapes; sed's replacement reads `&`, `\`)
    [DEMO, replace(DEMO, name="Bệnh viện A, B & <C>")],
    ids=["demo", "escapes"],
    indirect=True,
)
def test_xmlsec1_recipe_signs_a_file_the_portal_accepts(checkout: Path) -> None:
    recipe = next(b for b in blocks(PROFILE) if b.lang == "sh" and "xmlsec1 --sign" in b.code)
    done = _run(checkout, ["bash", "-euo", "pipefail"], recipe.code.replace("/tmp/", f"{checkout}/"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ACCEPTED" in done.stdout and "TOTAL_PASSED (two-reference)" in done.stdout
    # Issue 25: the recipe fills X509SubjectName (xmlsec1 leaves an empty one empty) with the certificate's subject
    assert "SIG_X509_SUBJECT_NAME" not in done.stdout, done.stdout
    signed = etree.parse(str(checkout / "gcs-xmlsec.xml"))
    [name] = signed.findall(f".//{{{DS_NS}}}X509SubjectName")
    cert = x509.load_pem_x509_certificate((checkout / "var" / "demo" / "79001.cert.pem").read_bytes())
    assert name.text and same_name(name.text, cert.subject), name.text


def test_python_recipe_signs_a_file_the_portal_accepts(checkout: Path) -> None:
    python = next(b for b in blocks(PROFILE) if b.lang == "python")
    check = next(b for b in blocks(PROFILE) if b.lang == "sh" and "gcs-python.xml" in b.code)
    made = _run(
        checkout, [str(checkout / ".venv" / "bin" / "python"), "-"], python.code.replace("/tmp/", f"{checkout}/")
    )
    assert made.returncode == 0, made.stderr
    judged = _run(checkout, ["bash", "-euo", "pipefail"], check.code.replace("/tmp/", f"{checkout}/"))
    assert judged.returncode == 0, judged.stdout + judged.stderr
    assert "ACCEPTED" in judged.stdout and "TOTAL_PASSED (two-reference)" in judged.stdout


def test_the_repository_refers_to_nothing_outside_it() -> None:
    """Docstrings and the README once pointed to design notes outside the repository, which a clone lacks."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if not path.is_file() or path.suffix in {".png", ".sqlite3"}:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        offenders += [f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert offenders == []
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    for doc in ("ARCHITECTURE.md", "signature-profile.md", "vendor-guide.md"):
        assert f"docs/{doc}" in layout and (ROOT / "docs" / doc).is_file()


def test_local_links_in_the_docs_exist() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if target.startswith("../examples/dotnet"):
                continue  # built on the interop branch (make interop)
            assert (page.parent / target).exists(), (page.name, target)


def test_vendor_guide_is_bilingual_and_gives_the_ci_recipe_without_p() -> None:
    guide = (ROOT / "docs" / "vendor-guide.md").read_text(encoding="utf-8")
    assert guide.count("**VI:**") >= 5 and guide.count("**EN:**") >= 5
    assert "--conformance-trigger-cmd" in guide and "examples/orders/gcs.json" in guide
    # (issue 11, point 3) `pytest -p conformance.pytest_plugin` crashes: the entry point already loads it
    for page in (ROOT / "docs" / "vendor-guide.md", ROOT / "README.md"):
        commands = [b.code for b in blocks(page) if b.lang == "sh"]
        assert any("--conformance-trigger-cmd" in c for c in commands), page.name
        assert not any("-p conformance.pytest_plugin" in c for c in commands), page.name


def test_make_serve_installs_only_the_package() -> None:
    """(issue 11, point 17) `make serve` installed the test and load extras (Playwright, Locust) to serve."""
    dry = subprocess.run(
        ["make", "-n", "-B", "serve", "PYTHON=python3"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    installs = [line for line in dry.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs and all(re.search(r"-e \.?$|-e \.\s", line + " ") for line in installs), installs
    assert not any("[test" in line or "load]" in line for line in installs)
    test = subprocess.run(["make", "-n", "-B", "install"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "-e '.[test,load]'" in test


# Issue 25: item 2, the CI recipes install pytest


def test_the_ci_recipes_install_pytest_in_the_ci_jobs_venv() -> None:
    """`make serve` and `pip install -e .` install no pytest: the README's CI block failed on `.venv/bin/pytest`."""
    for page in (ROOT / "docs" / "vendor-guide.md", ROOT / "README.md"):
        recipes = [b.code for b in blocks(page) if b.lang == "sh" and "--conformance-trigger-cmd" in b.code]
        assert recipes, page.name
        for code in recipes:
            assert re.search(r"python3 -m venv [\s\S]*?pip install[^\n]*-e \S+ pytest", code), (page.name, code)
            assert ".venv/bin/pytest" not in code, page.name


# Issue 25: item 14, counts the docs state are the code's


def test_every_case_count_in_the_docs_is_the_registrys() -> None:
    """The README said "judges 49 cases" when `conformance list` printed 50."""
    total = len(load_cases().all())
    stated = {
        (page.name, int(n))
        for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for n in re.findall(r"\b(\d+) (?:conformance )?cases\b", page.read_text(encoding="utf-8"))
    }
    assert stated and all(n == total for _, n in stated), (total, sorted(stated))


# Issue 25: item 6, the field tables of docs/documents.md say what each mode answers

DOCUMENTS = ROOT / "docs" / "documents.md"
ANSWERS = {"205/205": ("205", "205"), "warn/205": ("warn", "205"), "—": ("—", "—")}


def test_the_field_tables_of_the_documents_page_are_the_codes() -> None:
    """docs/documents.md called TEN_CON 'Required' while `portal` mode only warns when it is missing."""
    text = DOCUMENTS.read_text(encoding="utf-8")
    assert text == with_field_tables(text), "run `mock-portal fidelity --fields docs/documents.md`"


def _missing_column(doc_type: DocumentType) -> dict[str, str]:
    """Field -> the "Missing or empty" cell of the page's table for `doc_type`."""
    section = DOCUMENTS.read_text(encoding="utf-8").split(f"<!-- {doc_type.name} field table", 1)[1]
    rows = [line.split(" | ") for line in section.split("<!-- end of", 1)[0].splitlines() if line.startswith("| `")]
    return {cells[0].strip("|` "): cells[2] for cells in rows}


def _answer(doc_type: DocumentType, data: bytes, name: str, strictness: Strictness) -> str:
    root = parse_xml(data)
    severities = {
        f.severity
        for f in validate_schema(doc_type, root, strictness)
        if (f.path or "").rsplit("/", 1)[-1].split("[", 1)[0] == name
    }
    return "205" if Severity.ERROR in severities else "warn" if severities else "—"


@pytest.mark.parametrize(
    ("doc_type", "scenario_name"), [(DocumentType.GCS, "gcs_surrogacy"), (DocumentType.GBT, "gbt_normal")]
)
def test_the_missing_column_is_what_the_schema_check_answers(doc_type: DocumentType, scenario_name: str) -> None:
    """Each field left out, then sent empty, in both modes: the answer is the page's."""
    column = _missing_column(doc_type)
    assert list(column) == list(doc_type.field_names)
    fields = dict(scenario(scenario_name)[0][1])
    for name, cell in column.items():
        absent = build_xml(doc_type, {k: v for k, v in fields.items() if k != name}, data_id="Id-test")
        empty = build_xml(doc_type, {**fields, name: ""}, data_id="Id-test")
        for data in (absent, empty):
            got = tuple(_answer(doc_type, data, name, mode) for mode in (Strictness.PORTAL, Strictness.STRICT))
            assert got == ANSWERS[cell], (name, cell, got)


# Issue 25: item 16, the README's Schemathesis command is the one `make contract` runs


def test_the_readme_runs_schemathesis_with_the_hooks_as_make_contract_does() -> None:
    block = next(b.code for b in blocks(ROOT / "README.md") if "SCHEMATHESIS_HOOKS" in b.code)
    command = " ".join(block.replace("\\\n", " ").split())
    assert "SCHEMATHESIS_HOOKS=tests.contract_hooks" in command and "CONTRACT_SEED=seed.json" in command
    assert f"--exclude-path-regex '{contract_cli.GLOBAL_STATE}'" in command
    assert "--checks all --phases examples,coverage,fuzzing,stateful" in command


# Issue 25: `mock-portal fidelity --fields FILE` on a file without the field tables is a usage error, not a traceback


def test_fidelity_fields_on_a_file_without_the_tables_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mock_portal.cli import main

    page = tmp_path / "notes.md"
    page.write_text("# Notes\n\nno tables here\n", encoding="utf-8")
    assert main(["fidelity", "--fields", str(page)]) == 2
    err = capsys.readouterr().err
    assert f"--fields {page}: no " in err and "field table markers" in err, err
    assert page.read_text(encoding="utf-8") == "# Notes\n\nno tables here\n", "the file is left as it was"
    assert main(["fidelity", "--fields", str(tmp_path / "absent.md")]) == 2
    assert "absent.md: No such file or directory" in capsys.readouterr().err


# Issue 26: a type checker in `make lint`; every `# type: ignore` names its error code and says why

TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore")
EXPLAINED_IGNORE = re.compile(r"# type: ignore\[[a-z-]+(?:, [a-z-]+)*\]  # \S")


def _mypy_config() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    return config


def test_make_lint_runs_mypy_strict_over_the_packages() -> None:
    config = _mypy_config()
    assert {"mock_portal", "conformance"} <= set(config["files"]) and config["strict"] is True
    lint = re.search(r"^lint:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE)
    assert lint and "$(BIN)/mypy\n" in lint.group(1), "make lint runs mypy"
    assert "make lint\n" in (ROOT / ".ci" / "run").read_text(encoding="utf-8"), "CI runs make lint"


def test_every_type_ignore_names_its_error_code_and_a_reason() -> None:
    """mypy reports an ignore that hides nothing (`warn_unused_ignores`); the reader of one that does needs to
    know which error it hides (`[code]`: nothing else) and why the code is right all the same."""
    bare = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for package in _mypy_config()["files"]
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if TYPE_IGNORE.search(line) and not EXPLAINED_IGNORE.search(line)
    ]
    assert not bare, "`# type: ignore` without `[code]  # reason`:\n" + "\n".join(bare)
