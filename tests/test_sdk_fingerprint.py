"""Fingerprints: stable for the same defect, different for different defects."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import faultlens
import pytest
from faultlens._fingerprint import (
    FrameClassifier,
    fingerprint_exception,
    iter_chain,
    normalize_fingerprint,
)

HEX16 = re.compile(r"^[0-9a-f]{16}$")

APP_MODULE = textwrap.dedent(
    """
    def load(settings, key):
        return settings[key]

    def handler(settings):
        return load(settings, "tax_region")

    def other_handler(settings):
        return load(settings, "tax_region")

    def caught_here(settings):
        try:
            return settings["tax_region"]
        except KeyError as exc:
            return exc
    """
)

RUNNER = textwrap.dedent(
    """
    import sys
    import faultlens
    sys.path.insert(0, sys.argv[1])
    from shop import orders

    for name in ("handler", "other_handler"):
        try:
            getattr(orders, name)({})
        except KeyError as exc:
            print(name, faultlens.record_failure(exc))
    """
)


def _write_app(root: Path, source: str) -> Path:
    package = root / "shop"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "orders.py").write_text(source)
    return root


def _run(app_root: Path, tmp_path: Path) -> dict[str, str]:
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    result = subprocess.run(
        [sys.executable, str(runner), str(app_root)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(line.split() for line in result.stdout.splitlines())


def test_same_defect_same_fingerprint_across_processes_paths_and_line_edits(tmp_path) -> None:
    first = _run(_write_app(tmp_path / "host-a" / "srv", APP_MODULE), tmp_path)
    again = _run(_write_app(tmp_path / "host-a2" / "srv", APP_MODULE), tmp_path)
    elsewhere = _run(_write_app(tmp_path / "host-b" / "opt" / "deploy", APP_MODULE), tmp_path)
    edited = "# a comment that shifts every line\n\n\n" + APP_MODULE.replace(
        "return settings[key]", "value = settings[key]\n    return value"
    )
    shifted = _run(_write_app(tmp_path / "host-c", edited), tmp_path)
    assert HEX16.match(first["handler"])
    assert first == again == elsewhere == shifted


def test_different_call_sites_same_type_and_message_differ(tmp_path) -> None:
    fingerprints = _run(_write_app(tmp_path / "app", APP_MODULE), tmp_path)
    assert fingerprints["handler"] != fingerprints["other_handler"]


def _raise(func, *args) -> BaseException:
    try:
        func(*args)
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def _fp(exc: BaseException) -> str:
    return fingerprint_exception(exc, FrameClassifier())


def test_chained_exceptions_count() -> None:
    def parse(raw: str) -> int:
        return int(raw)

    def wrap_value_error(raw: str) -> int:
        try:
            return parse(raw)
        except ValueError as exc:
            raise RuntimeError("could not load") from exc

    def wrap_type_error(raw: object) -> int:
        try:
            return parse(raw)  # type: ignore[arg-type]
        except TypeError as exc:
            raise RuntimeError("could not load") from exc

    def wrapper(raw: object) -> int:
        return wrap_value_error(raw) if isinstance(raw, str) else wrap_type_error(raw)

    from_value = _raise(wrapper, "x")
    from_value_again = _raise(wrapper, "y")
    from_type = _raise(wrapper, None)
    assert [type(e) for e in iter_chain(from_value)] == [RuntimeError, ValueError]
    assert _fp(from_value) == _fp(from_value_again)
    assert _fp(from_value) != _fp(from_type)


def test_implicit_context_counts_unless_suppressed() -> None:
    def handler(suppress: bool) -> None:
        try:
            {}["k"]
        except KeyError:
            if suppress:
                raise ValueError("bad") from None
            raise ValueError("bad")  # noqa: B904 - the implicit context is the point

    with_context = _raise(handler, False)
    suppressed = _raise(handler, True)
    assert len(list(iter_chain(with_context))) == 2
    assert len(list(iter_chain(suppressed))) == 1
    assert _fp(with_context) != _fp(suppressed)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is 3.11+")
def test_exception_group_members_count() -> None:
    def first() -> None:
        raise ValueError("a")

    def second() -> None:
        raise KeyError("b")

    def gather(*funcs) -> None:
        errors = [_raise(func) for func in funcs]
        raise ExceptionGroup("several", errors)  # noqa: F821

    one = _raise(gather, first)
    two = _raise(gather, first, second)
    assert _fp(one) != _fp(two)
    assert len(list(iter_chain(two))) == 3


def test_recursion_depth_does_not_change_the_fingerprint() -> None:
    def recurse(depth: int) -> None:
        if depth == 0:
            raise ValueError("bottom")
        recurse(depth - 1)

    assert _fp(_raise(recurse, 5)) == _fp(_raise(recurse, 50))


def test_line_numbers_within_a_function_do_not_count() -> None:
    def fails(first: bool) -> None:
        if first:
            raise ValueError("here")
        raise ValueError("there")

    assert _fp(_raise(fails, True)) == _fp(_raise(fails, False))


def test_library_frames_count_only_when_no_app_frame_is_left() -> None:
    import json

    def app_call() -> None:
        json.loads("{bad json")

    def other_app_call() -> None:
        json.loads("{bad json")

    in_app = _raise(app_call)
    library_only = in_app.__traceback__
    while library_only is not None and library_only.tb_frame.f_globals["__name__"] != "json":
        library_only = library_only.tb_next
    stripped = type(in_app)(in_app.msg, in_app.doc, in_app.pos)  # type: ignore[attr-defined]
    stripped = stripped.with_traceback(library_only)
    assert _fp(in_app) != _fp(_raise(other_app_call))
    # With only json's frames left, they are used (and stay stable).
    assert _fp(stripped) == _fp(type(in_app)("x", "y", 0).with_traceback(library_only))
    frames = FrameClassifier()
    code = library_only.tb_frame.f_code  # type: ignore[union-attr]
    assert frames.info(code, "json")[2] == 1  # library


def test_in_app_include_overrides_path_rules() -> None:
    import json

    code = json.loads.__code__
    assert FrameClassifier().info(code, "json")[2] == 1
    assert FrameClassifier(in_app_include=["json"]).info(code, "json")[2] == 2


def test_faultlens_own_frames_never_count() -> None:
    from faultlens import _wrappers as wrappers

    frames = FrameClassifier()
    wrapper = wrappers.make_wrapper("sync", lambda exc: None)
    # a capture wrapper's frame answers its caller's module name: its code marks it
    assert frames.info(wrapper.__code__, "app.orders")[2] == 0
    assert frames.info(wrappers.nested_codes.__code__, "faultlens._wrappers")[2] == 0

    @faultlens.capture
    def outer_a() -> None:
        raise ValueError("x")

    exc = _raise(outer_a)
    kinds = []
    tb = exc.__traceback__
    while tb is not None:
        kinds.append(frames.info(tb.tb_frame.f_code, tb.tb_frame.f_globals["__name__"]))
        tb = tb.tb_next
    assert [kind[1] for kind in kinds if kind[2] != 0] == ["_raise", "outer_a"], kinds


class TestMessageFallback:
    def test_unraised_exceptions_use_the_parameterized_message(self) -> None:
        first = _fp(TimeoutError("timeout after 30s connecting to 10.0.0.7:5432"))
        second = _fp(TimeoutError("timeout after 12s connecting to 10.0.0.9:5432"))
        different = _fp(TimeoutError("pool exhausted"))
        other_type = _fp(ConnectionError("timeout after 30s connecting to 10.0.0.7:5432"))
        assert first == second
        assert len({first, different, other_type}) == 3

    def test_unprintable_message(self) -> None:
        class Weird(Exception):
            def __str__(self) -> str:
                raise RuntimeError("no")

        assert HEX16.match(_fp(Weird()))


class TestOverrides:
    def test_explicit_hex_fingerprint_is_kept(self, telemetry) -> None:
        assert faultlens.record_failure(ValueError(), fingerprint="00112233AABBccdd") == (
            "00112233aabbccdd"
        )

    def test_explicit_free_text_is_hashed_into_the_wire_format(self, telemetry) -> None:
        fp = faultlens.record_failure(ValueError("a"), fingerprint="payment-timeout")
        assert fp == normalize_fingerprint("payment-timeout")
        assert HEX16.match(fp or "")
        assert telemetry.only_failure()["failure.fingerprint"] == fp

    def test_callback(self, telemetry) -> None:
        seen = []

        def callback(exc: BaseException, default: str) -> str | None:
            seen.append(default)
            return "tenant-wide" if "tenant" in str(exc) else None

        faultlens.configure(fingerprint_callback=callback)
        tenant = faultlens.record_failure(ValueError("tenant 1 broken"))
        other = faultlens.record_failure(ValueError("other"))
        assert tenant == normalize_fingerprint("tenant-wide")
        assert other == seen[1]

    def test_a_raising_callback_keeps_the_default(self, telemetry) -> None:
        faultlens.configure(fingerprint_callback=lambda exc, default: 1 / 0)  # type: ignore[arg-type,return-value]
        exc = ValueError("x")
        assert faultlens.record_failure(exc) == _fp(ValueError("x"))


def test_redaction_never_changes_the_fingerprint(telemetry) -> None:
    def login(password: str) -> None:
        raise PermissionError(f"login failed password={password}")

    redacted = faultlens.record_failure(_raise(login, "hunter2"))
    faultlens.configure(redact=False)
    plain = faultlens.record_failure(_raise(login, "hunter2"))
    faultlens.add_redaction(r"login failed")
    faultlens.configure(redact=True)
    extra = faultlens.record_failure(_raise(login, "hunter2"))
    assert redacted == plain == extra
