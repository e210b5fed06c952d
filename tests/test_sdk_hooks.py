"""Out-of-band failures: excepthooks, asyncio, logging capture, and their removal."""

from __future__ import annotations

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
from faultlens._asyncio_hook import asyncio_hook_installed
from faultlens._excepthooks import excepthooks_installed
from faultlens._logcapture import logging_capture_installed
from otlp_receiver import OtlpReceiver, attributes

UNCAUGHT = textwrap.dedent(
    """
    import sys
    import faultlens
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    # A long delay: only the excepthook's flush can get the span out before exit.
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], insecure=True),
                           schedule_delay_millis=60_000)
    )
    faultlens.configure(tracer_provider=provider)
    faultlens.install()

    def main():
        raise RuntimeError("config store unreachable")

    main()
    """
)


def test_uncaught_exception_is_recorded_critical_and_flushed_before_exit(tmp_path) -> None:
    script = tmp_path / "app.py"
    script.write_text(UNCAUGHT)
    with OtlpReceiver() as receiver:
        result = subprocess.run(
            [sys.executable, str(script), receiver.endpoint],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert receiver.wait_for(lambda: len(receiver.spans()) >= 1, timeout=5)
        (_, span), *_ = receiver.spans()
    assert result.returncode == 1
    assert "RuntimeError: config store unreachable" in result.stderr  # the default hook still ran
    event = attributes(span.events[0].attributes)
    assert span.name == "faultlens.failure"
    assert event["failure.source"] == "excepthook"
    assert event["failure.severity"] == "critical"
    assert event["failure.handled"] is False
    assert span.status.code == 2  # STATUS_CODE_ERROR


USERS_HOOK = textwrap.dedent(
    """
    import sys, traceback
    import faultlens

    def users_hook(exc_type, exc, tb):
        files = [frame.filename for frame in traceback.extract_tb(tb)]
        print("hook", exc_type.__name__, exc.args[0], any("/faultlens/" in f for f in files))
        sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = users_hook
    faultlens.install()

    def main():
        raise RuntimeError("config store unreachable")

    main()
    """
)


def test_the_users_excepthook_still_runs_and_sees_no_faultlens_frame(tmp_path) -> None:
    script = tmp_path / "app.py"
    script.write_text(USERS_HOOK)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["hook RuntimeError config store unreachable False"]
    traceback_lines = result.stderr[result.stderr.index("Traceback") :].splitlines()
    assert traceback_lines[-1] == "RuntimeError: config store unreachable"
    assert not [line for line in traceback_lines if "/faultlens/" in line]


def test_thread_excepthook_records_and_chains(telemetry) -> None:
    seen: list[threading.ExceptHookArgs] = []
    hook = seen.append
    previous = threading.excepthook
    threading.excepthook = hook
    try:
        faultlens.install_excepthooks()

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


def test_keyboard_interrupt_and_thread_system_exit_are_not_failures(telemetry) -> None:
    previous = threading.excepthook
    threading.excepthook = lambda args: None
    try:
        faultlens.install_excepthooks()
        sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
        thread = threading.Thread(target=sys.exit)
        thread.start()
        thread.join()
        assert telemetry.failure_events() == []
    finally:
        faultlens.uninstall_excepthooks()
        threading.excepthook = previous


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
