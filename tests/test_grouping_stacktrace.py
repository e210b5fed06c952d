"""Frames parsed out of exception.stacktrace text: Python, Java, JavaScript/Node, Go."""

from __future__ import annotations

import time

import pytest
from faultlens_collector.ingest import stacktrace
from faultlens_collector.ingest.stacktrace import (
    MAX_FRAMES,
    MAX_INPUT_CHARS,
    MAX_LINE_CHARS,
    Frame,
    parse_frames,
)
from grouping_samples import SAMPLES, render
from hypothesis import given, settings
from hypothesis import strategies as st


def table(text: str) -> list[tuple[str, str, bool]]:
    return [(frame.module, frame.function, frame.library) for frame in parse_frames(text)]


def app(module: str, function: str) -> tuple[str, str, bool]:
    return (module, function, False)


def lib(module: str, function: str) -> tuple[str, str, bool]:
    return (module, function, True)


# --- the samples, frame by frame ------------------------------------------------


def test_python_chained_sections_in_printed_order() -> None:
    assert table(render(SAMPLES["python_chained"], 1)) == [
        app("pricing", "unit_price"),  # the cause comes first
        lib("flask.app", "wsgi_app"),
        lib("flask.app", "full_dispatch_request"),
        lib("flask.app", "dispatch_request"),
        app("api", "create_order"),
        app("service", "place"),
        app("service", "<genexpr>"),
        app("pricing", "unit_price"),
    ]


def test_python_during_handling_section_counts_too() -> None:
    assert table(render(SAMPLES["python_during_handling"], 2)) == [
        lib("psycopg.connection", "connect"),
        app("nightly", "<module>"),
        app("nightly", "main"),
        app("db", "conn_factory"),
        lib("psycopg.connection", "connect"),
        app("db", "__exit__"),
    ]


def test_python_exception_group_members_inside_their_margins() -> None:
    assert table(render(SAMPLES["python_group"], 3)) == [
        app("worker", "<module>"),
        lib("asyncio.runners", "run"),
        lib("asyncio.runners", "run"),
        lib("asyncio.base_events", "run_until_complete"),
        app("worker", "main"),
        lib("asyncio.taskgroups", "__aexit__"),
        app("inventory", "fetch_stock"),
        lib("httpx._models", "raise_for_status"),
        app("inventory", "fetch_prices"),
    ]


def test_python_library_frames_name_their_modules() -> None:
    assert table(render(SAMPLES["python_library_only"], 4)) == [
        lib("threading", "_bootstrap_inner"),
        lib("threading", "run"),
        lib("urllib3.connectionpool", "urlopen"),
        lib("importlib._bootstrap", "_find_and_load"),
        lib("urllib3", "<module>"),
    ]


def test_java_caused_by_suppressed_and_generated_names() -> None:
    assert table(render(SAMPLES["java_spring"], 5)) == [
        app("org.springframework.web.servlet.FrameworkServlet", "processRequest"),
        app("org.springframework.web.servlet.FrameworkServlet", "doPost"),
        lib("javax.servlet.http.HttpServlet", "service"),
        app("org.apache.catalina.core.ApplicationFilterChain", "internalDoFilter"),
        app("org.apache.tomcat.util.threads.TaskThread$WrappingRunnable", "run"),
        lib("java.lang.Thread", "run"),
        app("com.acme.shop.orders.OrderService", "lambda$checkout"),
        lib("java.util.Optional", "orElseThrow"),
        app("com.acme.shop.orders.OrderService", "checkout"),
        app("com.acme.shop.orders.OrderService$$EnhancerBySpringCGLIB", "checkout"),
        lib("jdk.internal.reflect.GeneratedMethodAccessor", "invoke"),
        lib("jdk.internal.reflect.DelegatingMethodAccessorImpl", "invoke"),
        lib("java.lang.reflect.Method", "invoke"),
        app("com.acme.shop.web.CheckoutController", "submit"),
        app("com.acme.shop.web.CheckoutController$$Lambda", "apply"),
        app("com.acme.shop.audit.AuditLog", "close"),
        app("com.acme.shop.orders.OrderService", "checkout"),
    ]


def test_kotlin_frames_are_java_frames() -> None:
    assert table(render(SAMPLES["kotlin_coroutine"], 6)) == [
        app("com.acme.feed.FeedPoller$poll$", "invokeSuspend"),
        lib("kotlin.coroutines.jvm.internal.BaseContinuationImpl", "resumeWith"),
        lib("kotlinx.coroutines.DispatchedTask", "run"),
        lib("kotlinx.coroutines.scheduling.CoroutineScheduler$Worker", "run"),
    ]


def test_node_frames_modules_and_builtins() -> None:
    assert table(render(SAMPLES["node_express"], 7)) == [
        app("billing/invoice", "toInvoice"),
        lib("<native>", "Array.map"),
        app("billing/service", "InvoiceService.buildAll"),
        lib("<native>", "Promise.all"),
        app("routes/billing", "handler"),
        lib("express/lib/router/layer", "Layer.handle"),
        lib("express/lib/router/route", "next"),
        lib("node:internal/process/task_queues", "processTicksAndRejections"),
    ]


def test_node_esm_urls_constructors_and_eval() -> None:
    assert table(render(SAMPLES["node_esm"], 8)) == [
        lib("pg-pool/index", "Pool"),  # the last node_modules/ wins (pnpm layout)
        app("db", "<anonymous>"),
        lib("node:internal/modules/esm/module_job", "ModuleJob.run"),
        app("templates", "eval"),  # where the eval'd code came from
        lib("node:net", "TCPConnectWrap.afterConnect"),
    ]


def test_go_panic_reads_the_panicking_goroutine_only() -> None:
    assert table(render(SAMPLES["go_panic"], 9)) == [
        app("github.com/acme/ledger/internal/accounts", "(*Store).Balance"),
        app("github.com/acme/ledger/internal/api", "(*Server).handleBalance"),
        lib("net/http", "HandlerFunc.ServeHTTP"),
        lib("net/http", "(*ServeMux).ServeHTTP"),
        lib("net/http", "serverHandler.ServeHTTP"),
        lib("net/http", "(*conn).serve"),
        lib("net/http", "(*Server).Serve"),  # "created by"
    ]


def test_go_debug_stack_with_module_cache_and_major_version_package() -> None:
    assert table(render(SAMPLES["go_debug_stack"], 10)) == [
        lib("runtime/debug", "Stack"),
        app("github.com/acme/ledger/internal/worker", "(*Pool).recoverJob"),
        lib("runtime", "panic"),
        app("github.com/acme/ledger/internal/worker", "settle"),
        lib("gopkg.in/yaml.v3", "(*decoder).unmarshal"),
        app("github.com/acme/ledger/internal/worker", "(*Pool).run.func1"),
        app("github.com/acme/ledger/internal/worker", "(*Pool).Start"),
    ]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_same_defect_reads_the_same_everywhere(name: str) -> None:
    """Other line numbers, addresses, checkout directories, hosts, install prefixes."""
    frames = {tuple(parse_frames(render(SAMPLES[name], seed))) for seed in range(40)}
    assert len(frames) == 1
    assert next(iter(frames))  # and something was read


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_frames_carry_no_positions(name: str) -> None:
    for frame in parse_frames(render(SAMPLES[name], 11)):
        assert isinstance(frame, Frame)
        assert ".py" not in frame.module
        assert ".java:" not in frame.module
        assert not frame.module.endswith((".js", ".go"))
        assert "0x" not in frame.module + frame.function


# --- format details ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '  File "<frozen runpy>", line 198, in _run_module_as_main',
            lib("runpy", "_run_module_as_main"),
        ),
        ('  File "<string>", line 1, in <module>', app("<string>", "<module>")),
        ('  File "<ipython-input-3-5f2b0c6a1d>", line 2, in f', app("<ipython-input>", "f")),
        (
            '  File "C:\\Python311\\Lib\\json\\decoder.py", line 355, in raw_decode',
            lib("json.decoder", "raw_decode"),
        ),
        (
            '  File "/usr/lib/python3/dist-packages/yaml/__init__.py", line 81, in load',
            lib("yaml", "load"),
        ),
        (
            '  File "/usr/lib/python3.12/lib-dynload/_ssl.cpython-312-x86_64-linux-gnu.so",'
            " line 1, in wrap",
            lib("_ssl", "wrap"),
        ),
        ('  File "/app/shop/__init__.py", line 3, in <module>', app("shop", "<module>")),
        ('  File "manage.py", line 22, in main', app("manage", "main")),
        ('  File "/srv/app/x.py", line None, in f', app("x", "f")),
    ],
)
def test_python_frame_lines(line: str, expected: tuple[str, str, bool]) -> None:
    assert table("Traceback (most recent call last):\n" + line + "\nValueError: x\n") == [expected]


def test_python_application_modules_are_relative_to_their_shared_directory() -> None:
    trace = """Traceback (most recent call last):
  File "/srv/rel/42/manage.py", line 22, in <module>
  File "/srv/rel/42/shop/orders/views.py", line 9, in post
  File "/srv/rel/42/shop/__init__.py", line 3, in setup
ValueError: x
"""
    assert table(trace) == [
        app("manage", "<module>"),
        app("shop.orders.views", "post"),
        app("shop", "setup"),
    ]


def test_python_syntax_error_location_has_no_function() -> None:
    trace = """Traceback (most recent call last):
  File "/app/main.py", line 1, in <module>
    import settings
  File "/app/settings.py", line 7
    DEBUG = = True
            ^
SyntaxError: invalid syntax
"""
    assert table(trace) == [app("main", "<module>"), app("settings", "")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "\tat com.acme.Main$$Lambda$1/1283928880.run(Unknown Source)",
            app("com.acme.Main$$Lambda", "run"),
        ),
        (
            "\tat com.acme.Main$$Lambda/0x000001f4a1003a00.run(Unknown Source)",
            app("com.acme.Main$$Lambda", "run"),
        ),
        (
            "\tat com.sun.proxy.$Proxy123.charge(Unknown Source)",
            lib("com.sun.proxy.$Proxy", "charge"),
        ),
        (
            "\tat com.acme.Order$HibernateProxy$eM3fKqZa.getLines(Unknown Source)",
            app("com.acme.Order$HibernateProxy", "getLines"),
        ),
        (
            "\tat com.acme.Repo$$SpringCGLIB$$0.save(<generated>)",
            app("com.acme.Repo$$SpringCGLIB", "save"),
        ),
        ("\tat com.acme.Outer$1.run(Outer.java:12)", app("com.acme.Outer$", "run")),
        ("\tat com.acme.Outer.access$000(Outer.java:3)", app("com.acme.Outer", "access")),
        ("\tat com.acme.Outer.<init>(Outer.java:3)", app("com.acme.Outer", "<init>")),
        (
            "\tat jdk.internal.misc.Unsafe.park(Native Method)",
            lib("jdk.internal.misc.Unsafe", "park"),
        ),
        ("\tat com.acme@2.1/com.acme.Api.call(Api.java:8)", app("com.acme.Api", "call")),
        (
            "\tat scala.collection.immutable.List.map(List.scala:293)",
            lib("scala.collection.immutable.List", "map"),
        ),
        ("\tat android.os.Looper.loop(Looper.java:223)", lib("android.os.Looper", "loop")),
    ],
)
def test_java_frame_lines(line: str, expected: tuple[str, str, bool]) -> None:
    assert table("java.lang.RuntimeException: boom\n" + line + "\n") == [expected]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("    at /srv/app/src/index.js:10:5", app("index", "<anonymous>")),
        ("    at Object.<anonymous> (/srv/app/src/main.ts:3:1)", app("main", "Object.<anonymous>")),
        ("    at new Client (/srv/app/lib/client.js:4:11)", app("client", "Client")),
        ("    at async Promise.all (index 3)", lib("<native>", "Promise.all")),
        ("    at emitOne (events.js:116:13)", lib("events", "emitOne")),
        (
            "    at Module._compile (internal/modules/cjs/loader.js:999:30)",
            lib("internal/modules/cjs/loader", "Module._compile"),
        ),
        ("    at f (webpack:///./src/cart.js?:12:3)", app("cart", "f")),
        ("    at g (https://cdn-3.example.com/static/js/app.js:1:20345)", app("app", "g")),
        ("    at h (C:\\shop\\src\\app.js:7:2)", app("app", "h")),
        (
            "    at k (/app/node_modules/@scope/pkg/dist/index.cjs:1:2)",
            lib("@scope/pkg/dist/index", "k"),
        ),
        ("    at Runtime.run (ext:core/01_core.js:5:1)", lib("ext:core/01_core", "Runtime.run")),
    ],
)
def test_js_frame_lines(line: str, expected: tuple[str, str, bool]) -> None:
    assert table("Error: boom\n" + line + "\n") == [expected]


def test_js_prose_starting_with_at_is_no_frame() -> None:
    assert parse_frames("Error: quota\n    at least 3 items are needed: got 2:1\n") == []


def test_go_pkg_errors_pairs_without_arguments() -> None:
    trace = """open /etc/ledger.yaml: no such file or directory
github.com/acme/ledger/internal/config.Load
\t/build/internal/config/config.go:41
main.main
\t/build/cmd/ledger/main.go:18
runtime.main
\t/usr/local/go/src/runtime/proc.go:271
"""
    assert table(trace) == [
        app("github.com/acme/ledger/internal/config", "Load"),
        app("main", "main"),
        lib("runtime", "main"),
    ]


def test_go_vendor_and_trimpath_modules_are_library() -> None:
    trace = """goroutine 7 [running]:
github.com/lib/pq.(*conn).recvMessage(0xc0001)
\tgithub.com/lib/pq@v1.10.9/conn.go:1000 +0x1c
github.com/jackc/pgx/v5.(*Conn).Query(0xc0002)
\t/src/app/vendor/github.com/jackc/pgx/v5/conn.go:7 +0x2
myservice/handlers.Pay(0xc0003)
\tmyservice/handlers/pay.go:12 +0x3
"""
    assert table(trace) == [
        lib("github.com/lib/pq", "(*conn).recvMessage"),
        lib("github.com/jackc/pgx/v5", "(*Conn).Query"),
        app("myservice/handlers", "Pay"),  # a dot-less module path is no standard library
    ]


def test_first_format_found_decides() -> None:
    """A Java trace quoted in a Python exception's message does not mix in."""
    trace = """Traceback (most recent call last):
  File "/app/jobs/spark_job.py", line 12, in run
    df.collect()
py4j.protocol.Py4JJavaError: An error occurred while calling o57.collectToPython.
: org.apache.spark.SparkException: Job aborted
\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages(DAGScheduler.scala:2672)
"""
    assert table(trace) == [app("spark_job", "run")]


# --- robustness and bounds --------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "boom",
        "ValueError: nothing to see here",
        "\n\n\n",
        "at",
        "at (",
        '  File "',
        "main.main(\n\t",
        "\x00\x01\x02" * 100,
        "Traceback (most recent call last):\n",
    ],
)
def test_unrecognised_text_gives_no_frames(text: str) -> None:
    assert parse_frames(text) == []


@pytest.mark.parametrize("value", [None, b'  File "/a.py", line 1, in f', 42, ["x"]])
def test_non_text_gives_no_frames(value: object) -> None:
    assert parse_frames(value) == []  # type: ignore[arg-type]


def test_frame_count_is_bounded_keeping_head_and_tail() -> None:
    lines = [f'  File "/app/mod{i}.py", line {i}, in f{i}' for i in range(5000)]
    frames = parse_frames("Traceback (most recent call last):\n" + "\n".join(lines))
    assert len(frames) == MAX_FRAMES
    assert frames[0].function == "f0"
    assert frames[-1].function == "f4999"


def test_huge_input_keeps_head_and_tail_and_drops_cut_lines() -> None:
    filler = "x" * 80 + "\n"
    head = '  File "/app/first.py", line 1, in start\n'
    tail = '  File "/app/last.py", line 9, in finish\n'
    text = head + filler * (MAX_INPUT_CHARS // len(filler) * 3) + tail
    assert [frame.function for frame in parse_frames(text)] == ["start", "finish"]


def test_overlong_lines_are_skipped() -> None:
    long_name = "f" * MAX_LINE_CHARS
    trace = f'  File "/app/a.py", line 1, in {long_name}\n  File "/app/b.py", line 2, in g\n'
    assert [frame.function for frame in parse_frames(trace)] == ["g"]


@pytest.mark.parametrize(
    "line",
    [
        "at " + "a (" * 1300 + ")",
        "\tat " + "a.b(" * 1000,
        "    at " + "x:" * 2000 + "1:2",
        '  File "' + '", line 1, in ' * 250,
        "main.f" + "(" * 4000,
        "\t" + ":1" * 2000,
    ],
)
def test_pathological_lines_stay_linear(line: str) -> None:
    text = "\n".join([line] * (MAX_INPUT_CHARS // (len(line) + 1)))
    start = time.perf_counter()
    parse_frames(text)
    assert time.perf_counter() - start < 2.0


_FRAGMENTS = st.sampled_from(
    [
        "Traceback (most recent call last):",
        '  File "/app/a.py", line 3, in f',
        '  | File "/x/site-packages/p/q.py", line 3, in g',
        "\tat com.acme.A.b(A.java:1)",
        "Caused by: java.lang.X: y",
        "\t... 3 more",
        "    at f (/app/x.js:1:2)",
        "    at /app/y.mjs:3:4",
        "    at async g (<anonymous>)",
        "goroutine 1 [running]:",
        "main.main()",
        "created by main.run in goroutine 1",
        "\t/app/main.go:3 +0x1d",
        "",
    ]
)


def unguarded(text: str) -> list[tuple[str, str, bool]]:
    """The parser without parse_frames' last-resort ``except``: a bug here raises."""
    return stacktrace._resolve(stacktrace._read(stacktrace._clip(text).splitlines()))


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_frames_never_raises_on_arbitrary_text(text: str) -> None:
    frames = parse_frames(text)
    assert all(isinstance(frame, Frame) for frame in frames)
    assert [(f.module, f.function, f.library) for f in frames] == unguarded(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=40)), max_size=60))
def test_parse_frames_never_raises_on_mixed_frame_lines(lines: list[str]) -> None:
    frames = unguarded("\n".join(lines))
    assert len(frames) <= MAX_FRAMES
    assert all(isinstance(module, str) and isinstance(name, str) for module, name, _ in frames)
