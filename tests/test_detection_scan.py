"""``faultlens scan``: a generated package with every kind of defect, a real installed
package with hundreds of modules, the report and its schema, the baseline."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jsonschema
import pytest
from faultlens_collector.detection.report import schema

from tests.detection_support import faultlens, make_package


def failures_by_where(report: dict) -> dict[str, dict]:
    found = {}
    for failure in report["failures"]:
        for where in failure["where"].split(", "):
            found[where] = failure
    return found


@pytest.fixture(scope="module")
def scanned(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess, dict, Path]:
    root = make_package(tmp_path_factory.mktemp("scan"))
    report_path = root / "report.json"
    started = time.monotonic()
    result = faultlens(
        "scan", "shop", "--timeout", "3", "--report", str(report_path), cwd=root, root=root
    )
    elapsed = time.monotonic() - started
    assert elapsed < 60, elapsed
    return result, json.loads(report_path.read_text()), root


def test_every_defect_is_one_failure_with_its_category(scanned) -> None:
    result, report, _ = scanned
    assert result.returncode == 1, result.stderr  # new failures, no baseline
    found = failures_by_where(report)
    syntax = found["shop.syntax_bad"]
    assert (syntax["exception_type"], syntax["category"], syntax["severity"]) == (
        "SyntaxError",
        "syntax",
        "critical",
    )
    assert syntax["detected_by"] == "import, compile" or syntax["detected_by"] == "compile, import"
    assert syntax["count"] == 2  # byte-compiling and importing met the same defect
    missing = found["shop.missing"]
    assert (missing["exception_type"], missing["category"]) == ("ModuleNotFoundError", "import")
    assert "definitely_not_installed_xyz" in missing["message"]
    assert "shop/missing.py" in missing["stacktrace"]
    # circ_a -> circ_b -> "from shop.circ_a import thing" before circ_a defines it;
    # circ_b imported first completes (circ_a finds the half-done circ_b and goes on).
    circular = found["shop.circ_a"]
    assert "shop.circ_b" not in found
    assert circular["exception_type"] == "ImportError"
    assert "shop/circ_b.py" in circular["stacktrace"]
    assert "cannot import name 'thing'" in circular["message"]
    hang = found["shop.hangs"]
    assert hang["category"] == "timeout"
    assert hang["exception_type"].endswith("ImportTimeoutError")
    assert "still running after 3 s" in hang["message"]
    assert "shop/hangs.py" in hang["stacktrace"]  # where it hung
    broken = found["shop.plugins:broken = shop.nowhere:plugin"]
    assert broken["detected_by"] == "entry_point"
    assert broken["exception_type"] == "ModuleNotFoundError"
    crash = found["shop-cli --help"]
    assert crash["detected_by"] == "console_script"
    assert crash["exception_type"] == "KeyError"
    assert "in main" in crash["stacktrace"]
    # What is fine is not reported; __main__ is compiled, never run.
    for fine in ("shop.fine", "shop.cli", "shop-fine --help", "shop.__main__", "shop"):
        assert fine not in found
    assert {f["status"] for f in report["failures"]} == {"new"}


def test_the_report_follows_the_shipped_schema_and_seed_shape(scanned) -> None:
    _, report, _ = scanned
    jsonschema.validate(report, schema())
    stats = report["statistics"]
    assert stats["total_unique_failures"] == len(report["failures"]) == 6
    assert stats["total_failure_count"] == sum(f["count"] for f in report["failures"])
    assert stats["by_category"]["import"] >= 3
    assert sum(stats["by_severity"].values()) == 6
    assert report["metadata"]["command"] == "scan"


def test_a_scan_time_import_error_has_the_run_time_fingerprint(scanned) -> None:
    _, report, root = scanned
    found = failures_by_where(report)
    app = root / "app.py"
    app.write_text(
        textwrap.dedent(
            """
            import faultlens
            for name in ("shop.missing", "shop.syntax_bad", "shop.circ_a"):
                try:
                    __import__(name)
                except Exception as exc:
                    print(faultlens.record_failure(exc))
            """
        )
    )
    run = subprocess.run(
        [sys.executable, str(app)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(root), "FAULTLENS_IN_APP": "shop", "PATH": "/usr/bin:/bin"},
    )
    assert run.stdout.split() == [
        found["shop.missing"]["fingerprint"],
        found["shop.syntax_bad"]["fingerprint"],
        found["shop.circ_a"]["fingerprint"],
    ]


def test_baseline_known_failures_pass_new_ones_fail_and_gone_ones_are_listed(
    tmp_path: Path,
) -> None:
    root = make_package(
        tmp_path,
        {"__init__.py": "", "missing.py": "import definitely_not_installed_xyz\n", "ok.py": ""},
    )
    baseline = tmp_path / "baseline.json"
    first = faultlens(
        "scan",
        "shop",
        "--no-entry-points",
        "--baseline",
        str(baseline),
        "--report",
        str(baseline),
        cwd=tmp_path,
        root=root,
    )
    assert first.returncode == 0, first.stdout + first.stderr  # the first run sets it
    again = faultlens(
        "scan", "shop", "--no-entry-points", "--baseline", str(baseline), cwd=tmp_path, root=root
    )
    assert again.returncode == 0, again.stdout
    (root / "shop" / "ok.py").write_text("import another_missing_module_abc\n")
    (root / "shop" / "missing.py").write_text("")
    report = tmp_path / "now.jsonl"
    second = faultlens(
        "scan",
        "shop",
        "--no-entry-points",
        "--baseline",
        str(baseline),
        "--report",
        str(report),
        cwd=tmp_path,
        root=root,
    )
    assert second.returncode == 1
    assert "1 new, 1 gone" in second.stdout
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [line["record"] for line in lines] == ["metadata", "failure", "gone"]
    assert lines[1]["status"] == "new"
    assert "another_missing_module_abc" in lines[1]["message"]
    assert "definitely_not_installed_xyz" in lines[2]["message"]
    defs = schema()["$defs"]
    jsonschema.validate(lines[0], {"$defs": defs, "$ref": "#/$defs/metadata"})
    jsonschema.validate(lines[1], {"$defs": defs, "$ref": "#/$defs/failure"})
    jsonschema.validate(lines[2], {"$defs": defs, "$ref": "#/$defs/gone"})
    ignored = faultlens(
        "scan",
        "shop",
        "--no-entry-points",
        "--baseline",
        str(baseline),
        "--ignore",
        "shop.ok",
        cwd=tmp_path,
        root=root,
    )
    assert ignored.returncode == 0


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = faultlens("scan", "no_such_package_anywhere_xyz", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("faultlens: ")
    assert "Traceback" not in result.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    result = faultlens("scan", "json", "--baseline", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert "not a faultlens report" in result.stderr


@pytest.mark.slow
def test_a_real_installed_package_with_hundreds_of_modules(tmp_path: Path) -> None:
    report_path = tmp_path / "pip.json"
    started = time.monotonic()
    result = faultlens("scan", "pip", "--report", str(report_path), cwd=tmp_path)
    elapsed = time.monotonic() - started
    report = json.loads(report_path.read_text())
    modules = int(result.stderr.split("(")[1].split()[0])
    print(f"\nfaultlens scan pip: {modules} modules in {elapsed:.1f} s")
    assert modules >= 400
    assert elapsed < 120, elapsed  # ~12 s here; generous for a loaded shared machine
    jsonschema.validate(report, schema())
    # pip's optional vendored integrations need packages that are not installed.
    assert any("OpenSSL" in f["message"] for f in report["failures"])
    assert not any(f["exception_type"].startswith("faultlens.") for f in report["failures"])
