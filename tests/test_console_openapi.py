"""The console's OpenAPI document, fuzzed with schemathesis against a running console and
processor: no call answers 5xx, and every response matches the document.

Calls authenticate with the processor's bearer token (scripts' way in), so the fuzzer
reaches every operation, the state-changing ones included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the console extra (faultlens[console]) is missing")
schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from tests.console_support import TOKEN, Failure, Stack, console_stack  # noqa: E402

pytestmark = pytest.mark.slow
A = "aaaa000000000001"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with console_stack(tmp_path_factory.mktemp("openapi")) as running:
        running.send(Failure(A, "KeyError", "'sku'", "lookup", "medium", False, "cart"))
        yield running


def test_the_api_matches_its_document(stack: Stack) -> None:
    """Every operation, 20 generated requests each (derandomized: the same ones every run)."""
    from hypothesis import given
    from schemathesis.checks import not_a_server_error, response_schema_conformance

    schema = schemathesis.openapi.from_url(f"{stack.url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: Any) -> None:
            case.call_and_validate(
                base_url=stack.url,
                headers={"Authorization": f"Bearer {TOKEN}"},
                checks=[not_a_server_error, response_schema_conformance],
            )

        call()


def test_the_document_is_served_and_names_every_operation(stack: Stack) -> None:
    import httpx

    document = httpx.get(f"{stack.url}/api/v1/openapi.json").json()
    paths = set(document["paths"])
    assert {
        "/api/v1/groups",
        "/api/v1/groups/{fingerprint}",
        "/api/v1/groups/dismiss",
        "/api/v1/groups/categorize",
        "/api/v1/groups/fix",
        "/api/v1/groups/resolve",
        "/api/v1/groups/reopen",
        "/api/v1/dashboard",
        "/api/v1/halts",
        "/api/v1/halts/{halt_id}/resume",
        "/api/v1/alerts",
        "/api/v1/audit",
        "/api/v1/hook-runs",
        "/api/v1/hooks",
    } <= paths
    assert all(path.startswith("/api/v1/") for path in paths)
    Path(json.dumps(document))  # plain JSON
