"""Out-of-band failures: uncaught exceptions, asyncio, logging capture, and their removal.

The uncaught exceptions of whole processes (the main thread ending, every
interpreter) are in tests/test_sdk_uncaught.py."""

from __future__ import annotations

import _thread
import asyncio
import gc
import logging
import logging.config
import subprocess
import sys
import textwrap
import threading
import traceback
from pathlib import Path

import faultlens
from faultlens import _excepthooks as excepthooks
from faultlens._asyncio_hook import asyncio_hook_installed
from faultlens._excepthooks import excepthooks_installed
from faultlens._logcapture import logging_capture_installed


def test_a_thread_dying_is_recorded_and_the_programs_hook_runs(telemetry) -> None:
    # 3.12+: seen through sys.monitoring, threading.excepthook stays the program's;
    # 3.10/3.11: faultlens' hook chains to it and is removed again at uninstall
    seen: list[threading.ExceptHookArgs] = []
    hook = seen.append
    previous = threading.excepthook
    threading.excepthook = hook
    try:
        faultlens.install_excepthooks()
        assert (threading.excepthook is hook) is (sys.version_info >= (3, 12))

        def work() -> None:
            raise ZeroDivisionError("ratio")

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        event = telemetry.only_failure()
        assert event["failure.source"] == "excepthook"
        assert event["failure.severity"] == "critical"
        assert len(seen) == 1
        assert isinstance(seen[0].exc_value, ZeroDivisionError)
    finally:
        faultlens.uninstall_excepthooks()
        assert threading.excepthook is hook
        threading.excepthook = previous


def test_thread_system_exit_is_not_a_failure(telemetry) -> None:
    previous = threading.excepthook
    threading.excepthook = lambda args: None
    try:
        faultlens.install_excepthooks()
        thread = threading.Thread(target=sys.exit)
        thread.start()
        thread.join()
        assert telemetry.failure_events() == []
    finally:
        faultlens.uninstall_excepthooks()
        threading.excepthook = previous


def _ended_a_thread() -> BaseException:
    """An exception whose traceback starts at the bottom frame of its thread, as one
    that ended the main thread does (``_thread``: no Python frame below the function)."""
    box: list[BaseException] = []
    done = threading.Event()

    def bottom() -> None:
        try:
            raise RuntimeError("config store unreachable")
        except RuntimeError as exc:
            box.append(exc)
        done.set()

    _thread.start_new_thread(bottom, ())
    assert done.wait(10)
    return box[0]


def test_the_exception_that_ended_the_main_thread_is_recorded_at_shutdown_while_installed(
    telemetry, monkeypatch
) -> None:
    # what threading._shutdown() calls before the atexit handlers, sys.last_value set by
    # PyErr_Print; tests/test_sdk_uncaught.py runs it for real
    exc = _ended_a_thread()
    monkeypatch.setattr(sys, "last_value", exc, raising=False)
    monkeypatch.setattr(sys, "last_exc", exc, raising=False)
    faultlens.uninstall_excepthooks()
    excepthooks._at_thread_shutdown()
    assert telemetry.failure_events() == []  # uninstalled: the callback does nothing
    faultlens.install_excepthooks()
    faultlens.install_excepthooks()
    try:
        excepthooks._at_thread_shutdown()
        excepthooks._at_thread_shutdown()
        event = telemetry.only_failure()  # once, however often it runs
        assert (event["failure.source"], event["failure.severity"]) == ("excepthook", "critical")
        assert event["failure.handled"] is False
    finally:
        faultlens.uninstall_excepthooks()


def test_an_exception_with_python_callers_below_it_is_not_taken_as_uncaught(
    telemetry, monkeypatch
) -> None:
    try:
        raise RuntimeError("printed by an embedded console")
    except RuntimeError as exc:
        monkeypatch.setattr(sys, "last_value", exc, raising=False)
        monkeypatch.setattr(sys, "last_exc", exc, raising=False)
    faultlens.install_excepthooks()
    try:
        excepthooks._at_thread_shutdown()
        assert telemetry.failure_events() == []
    finally:
        faultlens.uninstall_excepthooks()


def test_asyncio_task_exception_never_retrieved(telemetry) -> None:
    faultlens.install_asyncio_hook()

    async def refresh() -> None:
        raise ConnectionResetError("cache node reset")

    async def main() -> None:
        asyncio.get_running_loop().create_task(refresh())
        await asyncio.sleep(0.01)

    quiet = logging.getLogger("asyncio")
    quiet.disabled = True
    try:
        asyncio.run(main())
        gc.collect()
    finally:
        quiet.disabled = False
    event = telemetry.only_failure()
    assert event["failure.source"] == "asyncio"
    assert event["failure.handled"] is False
    assert event["asyncio.message"] == "Task exception was never retrieved"
    assert event["failure.category"] == "connection"


def test_custom_loop_exception_handler_still_runs(telemetry) -> None:
    faultlens.install_asyncio_hook()
    handled = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: handled.append(context["exception"]))
        loop.call_soon(lambda: 1 / 0)
        await asyncio.sleep(0.01)

    asyncio.run(main())
    assert len(handled) == 1
    assert telemetry.only_failure()["exception.type"] == "ZeroDivisionError"


def test_logged_exceptions_are_silent_failures(telemetry) -> None:
    assert faultlens.install_logging_capture()
    log = logging.getLogger("shop.pricing")

    def price() -> float:
        try:
            raise TimeoutError("pricing service timed out")
        except TimeoutError:
            log.exception("falling back to cached price")
            return 9.99

    assert price() == 9.99
    event = telemetry.only_failure()
    assert event["failure.handled"] is True
    assert event["failure.source"] == "logging"
    assert event["failure.category"] == "timeout"
    assert event["code.function.name"] == "price"
    assert event["code.file.path"] == __file__
    assert isinstance(event["code.line.number"], int)


def test_logging_without_exception_info_or_from_ignored_loggers(telemetry) -> None:
    faultlens.install_logging_capture()
    logging.getLogger("shop").error("no exception here")
    try:
        raise ValueError("x")
    except ValueError:
        logging.getLogger("opentelemetry.sdk").exception("exporter trouble")
        logging.getLogger("faultlens").exception("our own trouble")
    assert telemetry.failure_events() == []


def test_logging_capture_switch(monkeypatch, telemetry) -> None:
    monkeypatch.setenv("FAULTLENS_CAPTURE_LOGGING", "false")
    faultlens.configure(reload_env=True)
    assert faultlens.install_logging_capture() is False
    assert not logging_capture_installed()
    assert faultlens.install_logging_capture(force=True) is True


def test_already_recorded_exception_is_not_logged_twice(telemetry) -> None:
    faultlens.install_logging_capture()

    @faultlens.capture
    def inner() -> None:
        raise KeyError("k")

    try:
        inner()
    except KeyError:
        logging.getLogger("shop").exception("inner failed")
    assert telemetry.only_failure()["failure.source"] == "decorator"


def test_install_and_uninstall_restore_everything(telemetry) -> None:
    before = (sys.excepthook, threading.excepthook, asyncio.BaseEventLoop.call_exception_handler)
    factory = logging.getLogRecordFactory()
    faultlens.install()
    faultlens.install()  # idempotent
    assert excepthooks_installed()
    assert sys.excepthook is before[0]  # never replaced
    assert asyncio_hook_installed()
    assert logging_capture_installed()
    assert logging.getLogRecordFactory() is not factory
    faultlens.uninstall()
    after = (sys.excepthook, threading.excepthook, asyncio.BaseEventLoop.call_exception_handler)
    assert after == before
    assert asyncio.BaseEventLoop.call_exception_handler is before[2]
    assert logging.getLogRecordFactory() is factory


def test_logging_capture_adds_no_handler_wraps_nothing_and_leaves_no_frame(telemetry) -> None:
    root = logging.getLogger()
    configuration = (
        list(root.handlers),
        logging.basicConfig,
        logging.config.dictConfig,
        logging.config.fileConfig,
        logging.Logger.makeRecord,
        logging.Logger.callHandlers,
    )
    faultlens.install_logging_capture(force=True)
    assert (
        list(root.handlers),
        logging.basicConfig,
        logging.config.dictConfig,
        logging.config.fileConfig,
        logging.Logger.makeRecord,
        logging.Logger.callHandlers,
    ) == configuration
    stacks: list[list[str]] = []

    class StackHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            stacks.append([frame.filename for frame in traceback.extract_stack()])
            stacks.append([frame.filename for frame in traceback.extract_tb(record.exc_info[2])])

    # a logger that does not propagate to the root: captured all the same
    log = logging.getLogger("shop.isolated")
    log.propagate = False
    handler = StackHandler()
    log.addHandler(handler)
    try:
        try:
            {}["sku"]
        except KeyError:
            log.exception("no such sku")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    assert telemetry.only_failure()["exception.type"] == "KeyError"
    assert len(stacks) == 2
    assert not [name for stack in stacks for name in stack if "faultlens" in Path(name).parts]


def test_a_record_factory_installed_later_that_chains_keeps_the_capture(telemetry) -> None:
    original = logging.getLogRecordFactory()
    faultlens.install_logging_capture(force=True)
    ours = logging.getLogRecordFactory()

    def tagging(*args: object, **kwargs: object) -> logging.LogRecord:
        record = ours(*args, **kwargs)
        record.tag = "app"
        return record

    logging.setLogRecordFactory(tagging)
    try:
        try:
            raise TimeoutError("slow")
        except TimeoutError:
            logging.getLogger("shop").warning("slow", exc_info=True)
        assert telemetry.only_failure()["exception.type"] == "TimeoutError"
        faultlens.uninstall_logging_capture()
        # the program's factory stays; ours, inside its chain, records nothing more
        assert logging.getLogRecordFactory() is tagging
        try:
            raise TimeoutError("slow again")
        except TimeoutError:
            logging.getLogger("shop").warning("slow", exc_info=True)
        assert len(telemetry.failure_events()) == 1
    finally:
        logging.setLogRecordFactory(original)


def test_install_is_a_no_op_when_disabled(telemetry) -> None:
    faultlens.configure(disabled=True)
    faultlens.install()
    assert not excepthooks_installed()
    assert not asyncio_hook_installed()
    assert not logging_capture_installed()


LOGGING_OUTPUT = textwrap.dedent(
    """
    import logging, logging.config
    import faultlens

    original = logging.basicConfig, logging.config.dictConfig, logging.config.fileConfig
    faultlens.install_logging_capture()
    log = logging.getLogger("app")
    log.warning("unconfigured warning")  # no handler of the app's: printed as without faultlens
    log.info("unconfigured info")  # below lastResort's level: not printed, as without faultlens
    print(len(logging.getLogger().handlers))
    logging.basicConfig(level=logging.INFO, format="CONFIGURED %(message)s")
    log.info("after basicConfig")
    logging.basicConfig(format="IGNORED %(message)s")  # configured already: does nothing
    log.info("still configured")
    print(len(logging.getLogger().handlers))
    faultlens.uninstall_logging_capture()
    print((logging.basicConfig, logging.config.dictConfig, logging.config.fileConfig) == original)
    """
)


def test_logging_capture_leaves_the_programs_own_log_output_alone(tmp_path) -> None:
    script = tmp_path / "logs.py"
    script.write_text(LOGGING_OUTPUT)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "unconfigured warning",
        "CONFIGURED after basicConfig",
        "CONFIGURED still configured",
    ]
    assert result.stdout.splitlines() == ["0", "1", "True"]
