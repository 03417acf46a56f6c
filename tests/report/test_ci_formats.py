"""CI output formats: SARIF 2.1.0 against the official schema and validator, and
GitHub workflow commands against their documented syntax.

The SARIF schema and Microsoft's SARIF Multitool (its `validate` command checks
the schema and SARIF's own rules) come from the npm package
@microsoft/sarif-multitool-linux, fetched once into ~/.cache; where npm or the
registry is unavailable, the schema tests skip and say why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

CASES = Path(__file__).resolve().parents[1] / "rules" / "cases"
FLAGGED = sorted(p.relative_to(CASES).as_posix() for p in CASES.glob("PW*/flags_*.sql"))
PGWARDEN = [sys.executable, "-c", "from pgwarden.cli import main; main()"]
MULTITOOL = "@microsoft/sarif-multitool-linux@5.7.0"


def _lint(fmt: str, paths: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*PGWARDEN, "lint", "--format", fmt, *paths],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr  # every case has findings
    return proc


@pytest.fixture(scope="module")
def sarif_log() -> dict[str, Any]:
    log: dict[str, Any] = json.loads(_lint("sarif", FLAGGED, CASES).stdout)
    return log


@pytest.fixture(scope="module")
def multitool() -> Path:
    """The unpacked npm package: sarif-2.1.0.json and the Sarif.Multitool binary."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pgwarden-tests"
    home = cache / "sarif-multitool-5.7.0"
    if not (home / "package" / "sarif-2.1.0.json").exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: the official SARIF schema comes from npm")
        cache.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [npm, "pack", MULTITOOL, "--pack-destination", str(cache)],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if proc.returncode != 0:
            pytest.skip(f"npm pack {MULTITOOL} failed: {proc.stderr.strip()[-300:]}")
        tgz = cache / proc.stdout.strip().splitlines()[-1]
        partial = cache / "sarif-multitool.partial"
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(tgz) as tar:
            tar.extractall(partial, filter="data")
        tgz.unlink()
        shutil.rmtree(home, ignore_errors=True)
        partial.rename(home)
    tool = home / "package" / "Sarif.Multitool"
    tool.chmod(0o755)
    return home / "package"


def test_sarif_validates_against_the_official_2_1_0_schema(
    sarif_log: dict[str, Any], multitool: Path
) -> None:
    from jsonschema.validators import validator_for

    schema = json.loads((multitool / "sarif-2.1.0.json").read_text())
    assert "2.1.0" in schema["title"]
    validator = validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(sarif_log)]
    assert errors == []
    # The check can fail: a result without its required message is rejected.
    broken = json.loads(json.dumps(sarif_log))
    del broken["runs"][0]["results"][0]["message"]
    assert not validator.is_valid(broken)


def test_sarif_passes_microsofts_validator(
    sarif_log: dict[str, Any], multitool: Path, tmp_path: Path
) -> None:
    log = tmp_path / "pgwarden.sarif"
    log.write_text(json.dumps(sarif_log))
    out = tmp_path / "validation.sarif"
    proc = subprocess.run(
        [
            *(str(multitool / "Sarif.Multitool"), "validate", str(log), "-o", str(out)),
            *("--log", "ForceOverwrite", "--level", "Error;Warning"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "DOTNET_CLI_TELEMETRY_OPTOUT": "1"},
    )
    if not out.exists():
        pytest.skip(f"Sarif.Multitool did not run here: {(proc.stdout + proc.stderr)[-300:]}")
    report = json.loads(out.read_text())
    problems = [
        f"{r['ruleId']}: {r['message'].get('text', r['message'])}"
        for run in report["runs"]
        for r in run.get("results", [])
        if r.get("level", "warning") in ("error", "warning")
    ]
    assert problems == [], proc.stdout[-2000:]


def test_sarif_locations_and_rules(sarif_log: dict[str, Any]) -> None:
    run = sarif_log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    without_stats = [p for p in FLAGGED if not (CASES / p).read_text().startswith("-- stats:")]
    assert {r["ruleId"] for r in results} >= {p.split("/")[0] for p in without_stats}
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["level"] in ("error", "warning", "note")
        loc = r["locations"][0]["physicalLocation"]
        # Relative to the working directory, which code scanning maps onto the checkout.
        assert loc["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert loc["artifactLocation"]["uri"] in FLAGGED
        assert loc["region"]["startLine"] >= 1 and loc["region"]["startColumn"] >= 1
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == CASES.as_uri() + "/"


def test_sarif_uri_of_a_file_outside_the_working_directory(tmp_path: Path) -> None:
    odd = tmp_path / "deploy 2024" / "déjà,vu.sql"
    odd.parent.mkdir()
    odd.write_text("CREATE INDEX i ON t (a);\n")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    log = json.loads(_lint("sarif", [str(odd)], cwd).stdout)
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri == {"uri": odd.as_uri()}
    assert " " not in uri["uri"] and "%20" in uri["uri"]
    inside = json.loads(_lint("sarif", [os.path.relpath(odd, tmp_path)], tmp_path).stdout)
    rel = inside["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert rel == {"uri": "deploy%202024/d%C3%A9j%C3%A0%2Cvu.sql", "uriBaseId": "%SRCROOT%"}


# GitHub Actions workflow commands:  ::LEVEL key=value,key=value::message
# Property values escape % CR LF : ,  and the message escapes % CR LF.
_PROP = r"[a-z]+=[^,:\r\n]*"
_COMMAND = re.compile(rf"^::(error|warning|notice) ((?:{_PROP},)*{_PROP})::(.*)$")
_UNESCAPE_DATA = (("%0D", "\r"), ("%0A", "\n"), ("%25", "%"))
_UNESCAPE_PROP = (("%3A", ":"), ("%2C", ","), *_UNESCAPE_DATA)


def _unescape(text: str, table: tuple[tuple[str, str], ...]) -> str:
    for escaped, raw in table:
        text = text.replace(escaped, raw)
    return text


def test_github_annotations_follow_the_workflow_command_syntax(tmp_path: Path) -> None:
    odd = tmp_path / "a:b,c%d.sql"
    odd.write_text(
        "-- pgwarden: ignore PW101\n"  # a reasonless ignore: PW900
        "CREATE INDEX i ON t (a);\nALTER TABLE t ALTER COLUMN c TYPE bigint;\n"
    )
    out = _lint("github", [*(str(CASES / p) for p in FLAGGED[:5]), odd.name], tmp_path)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines
    seen_odd = False
    for line in lines:
        m = _COMMAND.match(line)
        assert m, line
        props = dict(p.split("=", 1) for p in m.group(2).split(","))
        assert set(props) == {"file", "line", "col", "title"}
        assert int(props["line"]) >= 1 and int(props["col"]) >= 1
        title = _unescape(props["title"], _UNESCAPE_PROP)
        assert re.fullmatch(r"PW\d{3} [a-z0-9-]+", title), title
        message = _unescape(m.group(3), _UNESCAPE_DATA)
        assert message and "\n" not in m.group(3)
        if _unescape(props["file"], _UNESCAPE_PROP).endswith("a:b,c%d.sql"):
            seen_odd = True
    assert seen_odd
