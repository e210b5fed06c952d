"""Classification into the category vocabulary and severity defaults (docs/sdk.md,
"Classification")."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import json
import socket
import urllib.error

import faultlens
import pytest
from faultlens._classify import CATEGORY_SEVERITY, Classifier


def _third_party(module: str, name: str, *bases: type[BaseException]) -> type[BaseException]:
    """A class that looks like it came from an installed library (e.g. requests)."""
    return type(name, bases or (Exception,), {"__module__": module})


# A faithful copy of the requests hierarchy: ConnectTimeout derives from both
# ConnectionError and Timeout, so walking the MRO alone would say "connection".
RequestException = _third_party("requests.exceptions", "RequestException", OSError)
RequestsConnectionError = _third_party("requests.exceptions", "ConnectionError", RequestException)
RequestsTimeout = _third_party("requests.exceptions", "Timeout", RequestException)
ConnectTimeout = _third_party(
    "requests.exceptions", "ConnectTimeout", RequestsConnectionError, RequestsTimeout
)
ReadTimeout = _third_party("requests.exceptions", "ReadTimeout", RequestsTimeout)
HTTPError = _third_party("requests.exceptions", "HTTPError", RequestException)


def _os_error(code: int) -> OSError:
    return OSError(code, "boom")


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (ImportError("x"), "import"),
        (ModuleNotFoundError("x"), "import"),
        (AttributeError("x"), "attribute"),
        (TypeError("x"), "type"),
        (ValueError("x"), "value"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), "value"),
        (ZeroDivisionError("x"), "value"),
        (KeyError("x"), "lookup"),
        (IndexError("x"), "lookup"),
        (TimeoutError("x"), "timeout"),
        (socket.timeout("x"), "timeout"),  # noqa: UP041 - the alias is what is tested
        (asyncio.TimeoutError(), "timeout"),
        (concurrent.futures.TimeoutError(), "timeout"),
        (ConnectionRefusedError("x"), "connection"),
        (ConnectionResetError("x"), "connection"),
        (socket.gaierror("x"), "connection"),
        (urllib.error.URLError("x"), "connection"),
        (urllib.error.HTTPError("http://x", 503, "down", {}, None), "dependency"),  # type: ignore[arg-type]
        (FileNotFoundError("x"), "io"),
        (EOFError("x"), "io"),
        (PermissionError("x"), "permission"),
        (MemoryError(), "resource"),
        (RecursionError(), "resource"),
        (json.JSONDecodeError("x", "doc", 0), "validation"),
        (asyncio.CancelledError(), "cancelled"),
        (KeyboardInterrupt(), "cancelled"),
        (RuntimeError("x"), "unknown"),
        (Exception("x"), "unknown"),
        # third-party by qualified name, no import needed
        (ConnectTimeout("x"), "timeout"),
        (ReadTimeout("x"), "timeout"),
        (RequestsConnectionError("x"), "connection"),
        (HTTPError("x"), "dependency"),
        (_third_party("grpc", "RpcError")(), "dependency"),
        (
            _third_party("pydantic_core._pydantic_core", "ValidationError", ValueError)(),
            "validation",
        ),
        # errno decides for plain OSError
        (_os_error(errno.ENOSPC), "resource"),
        (_os_error(errno.EMFILE), "resource"),
        (_os_error(errno.EACCES), "permission"),
        (_os_error(errno.ETIMEDOUT), "timeout"),
        (_os_error(errno.ECONNREFUSED), "connection"),
        (_os_error(errno.ENOENT), "io"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
)
def test_default_categories(exc: BaseException, category: str) -> None:
    assert Classifier().classify(exc).category == category


def test_subclasses_inherit_through_the_mro() -> None:
    class PaymentLookupFailed(KeyError):
        pass

    class DeeperStill(PaymentLookupFailed):
        pass

    assert Classifier().classify(DeeperStill("x")).category == "lookup"


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("UpstreamTimeout", "timeout"),
        ("QueueTimedOut", "timeout"),
        ("BrokerConnectionLost", "connection"),
        ("InvalidOrder", "validation"),
        ("MissingConfig", "configuration"),
        ("AccessDenied", "permission"),
        ("JobCancelled", "cancelled"),
        ("SomethingElse", "unknown"),
    ],
)
def test_name_hints_for_application_exceptions(name: str, category: str) -> None:
    exc_type = _third_party("myapp.errors", name)
    assert Classifier().classify(exc_type()).category == category


def test_the_most_specific_class_wins_over_a_builtin_base() -> None:
    exc_type = _third_party("myapp.errors", "UpstreamTimeout", ValueError)
    assert Classifier().classify(exc_type()).category == "timeout"


def test_exception_classes_can_declare_their_category_and_severity() -> None:
    class Refused(Exception):
        __faultlens_category__ = "halted"
        __faultlens_severity__ = "high"

    verdict = Classifier().classify(Refused())
    assert (verdict.category, verdict.severity) == ("halted", "high")


class TestSeverity:
    def test_category_defaults(self) -> None:
        classifier = Classifier()
        assert classifier.classify(ImportError()).severity == CATEGORY_SEVERITY["import"] == "high"
        assert classifier.classify(KeyError()).severity == "low"
        assert classifier.classify(TimeoutError()).severity == "medium"

    @pytest.mark.parametrize("exc", [MemoryError(), SystemError(), RecursionError()])
    def test_critical_types(self, exc: BaseException) -> None:
        assert Classifier().classify(exc).severity == "critical"

    def test_escaped_failures_are_at_least_medium(self) -> None:
        classifier = Classifier()
        assert classifier.classify(KeyError(), floor="medium").severity == "medium"
        assert classifier.classify(ImportError(), floor="medium").severity == "high"

    def test_excepthook_floor_is_critical(self) -> None:
        assert Classifier().classify(KeyError(), floor="critical").severity == "critical"


class TestUserRules:
    def test_type_rule_wins_over_defaults_and_covers_subclasses(self) -> None:
        classifier = Classifier()
        classifier.register(LookupError, category="validation", severity="high")
        verdict = classifier.classify(KeyError("x"))
        assert (verdict.category, verdict.severity) == ("validation", "high")

    def test_user_severity_is_not_raised_by_the_floor(self) -> None:
        classifier = Classifier()
        classifier.register(KeyError, severity="low")
        assert classifier.classify(KeyError(), floor="medium").severity == "low"

    def test_rule_with_only_severity_keeps_default_category(self) -> None:
        classifier = Classifier()
        classifier.register(TimeoutError, severity="critical")
        verdict = classifier.classify(TimeoutError())
        assert (verdict.category, verdict.severity) == ("timeout", "critical")

    def test_predicate_rules(self) -> None:
        classifier = Classifier()
        classifier.register(lambda exc: "card" in str(exc), category="payments")
        assert classifier.classify(ValueError("card declined")).category == "payments"
        assert classifier.classify(ValueError("other")).category == "value"

    def test_a_raising_predicate_counts_as_no_match(self) -> None:
        classifier = Classifier()
        classifier.register(lambda exc: 1 / 0 > 0, category="never")
        assert classifier.classify(ValueError()).category == "value"

    def test_newest_rule_wins(self) -> None:
        classifier = Classifier()
        classifier.register(ValueError, category="first")
        classifier.register(ValueError, category="second")
        assert classifier.classify(ValueError()).category == "second"

    def test_cached_answers_are_dropped_when_rules_change(self) -> None:
        classifier = Classifier()
        assert classifier.classify(ValueError()).category == "value"
        classifier.register(ValueError, category="validation")
        assert classifier.classify(ValueError()).category == "validation"

    def test_tuple_of_types(self) -> None:
        classifier = Classifier()
        classifier.register((KeyError, IndexError), category="data")
        assert classifier.classify(IndexError()).category == "data"
        assert classifier.classify(KeyError()).category == "data"

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"severity": "urgent"}, "invalid severity 'urgent'"),
            ({"category": "Bad Name"}, "invalid category 'Bad Name'"),
            ({}, "needs a category, a severity, or both"),
        ],
    )
    def test_bad_rules_are_refused_with_a_clear_error(self, kwargs, message) -> None:
        with pytest.raises(ValueError, match=message):
            Classifier().register(ValueError, **kwargs)

    def test_match_must_be_a_type_or_predicate(self) -> None:
        with pytest.raises(TypeError, match="not str"):
            Classifier().register("ValueError", category="x")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not an exception type"):
            Classifier().register((int,), category="x")  # type: ignore[arg-type]


def test_public_register_rule_and_classify(telemetry) -> None:
    class Declined(Exception):
        pass

    faultlens.register_rule(Declined, category="dependency", severity="high")
    assert faultlens.classify(Declined()) == faultlens.Classification("dependency", "high")
    faultlens.record_failure(Declined("card declined"))
    event = telemetry.only_failure()
    assert event["failure.category"] == "dependency"
    assert event["failure.severity"] == "high"
