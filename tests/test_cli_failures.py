"""``faultlens failures list|show|export`` and ``faultlens serve`` option errors."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultlens_collector.cli import main
from faultlens_collector.cli.connect import parse_since
from faultlens_collector.processor.server import Processor

from tests.processor_support import (
    FAULTLENS,
    TRACE_EXPORT,
    failure_attributes,
    raw_call,
    running_processor,
    span,
    trace_request,
)

NOW = 1_700_000_000_000_000_000


@pytest.fixture
def processor(tmp_path: Path) -> Iterator[Processor]:
    spans = [
        span(
            "charge",
            index=1,
            time_unix_nano=NOW,
            events=[
                failure_attributes(
                    "aaaa000000000001",
                    exception_type="TimeoutError",
                    message="charge timed out",
                    failure_category="timeout",
                    failure_severity="high",
                    failure_count=7,
                    exception_stacktrace="Traceback (most recent call last):\n  boom",
                )
            ],
        ),
        span(
            "lookup",
            index=2,
            time_unix_nano=NOW + 10**9,
            events=[failure_attributes("bbbb000000000002", exception_type="KeyError")],
        ),
    ]
    with running_processor(tmp_path) as running:
        raw_call(running.address, TRACE_EXPORT, trace_request(spans).SerializeToString())
        raw_call(
            running.address,
            TRACE_EXPORT,
            trace_request(
                [span(index=3, events=[failure_attributes("bbbb000000000002")])], service="api"
            ).SerializeToString(),
        )
        yield running


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_json_has_the_contract_fields(
    processor: Processor, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "failures", "list", "--json", "--target", processor.address)
    assert code == 0
    groups = json.loads(out)
    assert [group["fingerprint"] for group in groups] == ["bbbb000000000002", "aaaa000000000001"]
    required = {
        "fingerprint",
        "category",
        "severity",
        "count",
        "first_seen",
        "last_seen",
        "status",
        "service",
        "exception_type",
        "message",
    }
    assert all(required <= set(group) for group in groups)
    second = groups[1]
    assert second["count"] == 7
    assert second["category"] == "timeout"
    assert second["severity"] == "high"
    assert second["status"] == "open"
    assert second["service"] == "checkout"
    assert second["first_seen"] == "2023-11-14T22:13:20.000000Z"
    assert groups[0]["services"] == {"api": 1, "checkout": 1}


def test_list_filters_sort_and_limit(
    processor: Processor, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ("--target", processor.address, "--json")
    by_count = json.loads(run(capsys, "failures", "list", "--sort", "count", *target)[1])
    assert [g["count"] for g in by_count] == [7, 2]
    ascending = json.loads(run(capsys, "failures", "list", "--sort", "count", "--asc", *target)[1])
    assert [g["count"] for g in ascending] == [2, 7]
    assert [
        g["count"] for g in json.loads(run(capsys, "failures", "list", "--limit", "1", *target)[1])
    ] == [2]
    for option, value, expected in (
        ("--service", "api", ["bbbb000000000002"]),
        ("--category", "timeout", ["aaaa000000000001"]),
        ("--severity", "high", ["aaaa000000000001"]),
        ("--status", "resolved", []),
        ("--since", "2023-11-14T22:13:21", ["bbbb000000000002"]),
    ):
        found = json.loads(run(capsys, "failures", "list", option, value, *target)[1])
        assert [g["fingerprint"] for g in found] == expected, option


def test_list_as_a_table(processor: Processor, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "failures", "list", "--target", processor.address)
    assert code == 0
    assert "aaaa000000000001" in out
    assert "charge timed out" in out
    assert "2 of 2 groups" in out


def test_show_prints_links_to_the_sample_traces(
    processor: Processor, capsys: pytest.CaptureFixture[str]
) -> None:
    template = "http://jaeger:16686/trace/{trace_id}?uiFind={span_id}"
    code, out, _ = run(
        capsys, "failures", "show", "aaaa", "--trace-url", template, "--target", processor.address
    )
    assert code == 0
    assert "TimeoutError: charge timed out" in out
    assert f"http://jaeger:16686/trace/{1:032x}?uiFind={1:016x}" in out
    assert "Traceback (most recent call last)" in out
    code, out, _ = run(
        capsys, "failures", "show", "aaaa000000000001", "--json", "--target", processor.address
    )
    data = json.loads(out)
    assert data["stacktrace"].startswith("Traceback")
    assert data["samples"][0]["url"] is None


def test_show_of_an_unknown_or_ambiguous_fingerprint_is_one_line(
    processor: Processor, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "failures", "show", "ffff", "--target", processor.address)
    assert code == 1
    assert err.strip() == "faultlens: no failure group has fingerprint 'ffff'"
    raw_call(
        processor.address,
        TRACE_EXPORT,
        trace_request([span(events=[failure_attributes("aaaa000000000009")])]).SerializeToString(),
    )
    code, _, err = run(capsys, "failures", "show", "aaaa", "--target", processor.address)
    assert code == 1
    assert "names more than one failure group" in err


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_export_writes_every_group_in_full(
    processor: Processor, capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str
) -> None:
    output = tmp_path / f"report.{fmt}"
    code, _, err = run(
        capsys,
        "failures",
        "export",
        "--format",
        fmt,
        "-o",
        str(output),
        "--target",
        processor.address,
    )
    assert code == 0
    assert "wrote 2 failure groups" in err
    text = output.read_text()
    groups = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
    assert {g["fingerprint"] for g in groups} == {"aaaa000000000001", "bbbb000000000002"}
    assert all("stacktrace" in g for g in groups)


def test_export_of_nothing_is_an_empty_array(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_processor(tmp_path) as empty:
        code, out, _ = run(capsys, "failures", "export", "--target", empty.address)
    assert code == 0
    assert json.loads(out) == []


def test_an_unreachable_processor_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "failures", "list", "--target", "127.0.0.1:1")
    assert code == 1
    assert err.startswith("faultlens: cannot reach the faultlens processor at 127.0.0.1:1")
    assert "Traceback" not in err


def test_a_malformed_target_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "failures", "list", "--target", "grpc://processor:4317")
    assert code == 2
    assert err.strip() == (
        "faultlens: --target: endpoint 'grpc://processor:4317': scheme must be http or https, "
        "not 'grpc'"
    )


def test_bad_since_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "failures", "list", "--since", "yesterday")
    assert code == 2
    assert "--since 'yesterday'" in err


def test_since_durations() -> None:
    assert parse_since("90s", now=1000.0) == 910 * 10**9
    assert parse_since("2h", now=10_000.0) == (10_000 - 7200) * 10**9
    assert parse_since("2026-11-20") == 1_795_132_800 * 10**9


def test_serve_option_errors_are_one_line(tmp_path: Path) -> None:
    cases = [
        (["--tls-cert", "x.pem"], "--tls-cert and --tls-key go together"),
        (["--forward", "h:1", "--forward-header", "nope"], "expected KEY=VALUE"),
        (["--forward", "ftp://collector:4317"], "--forward: endpoint 'ftp://collector:4317'"),
        (["--token-file", str(tmp_path / "missing")], "cannot read --token-file"),
        (["--listen", "256.0.0.1:99999"], "cannot listen on 256.0.0.1:99999"),
        (["--max-request-mib", "0"], "--max-request-mib must be positive"),
        (["--max-pending-requests", "0"], "--max-pending-requests must be at least 1"),
    ]
    for args, message in cases:
        result = subprocess.run(
            [str(FAULTLENS), "serve", "--store", str(tmp_path / "db"), *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_serve_refuses_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database" * 200)
    result = subprocess.run(
        [str(FAULTLENS), "serve", "--listen", "127.0.0.1:0", "--store", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "as the failure store" in result.stderr
    assert "Traceback" not in result.stderr
