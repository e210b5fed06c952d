# ruff: noqa: E501  (sample traces keep their real line lengths)
"""Realistic ``exception.stacktrace`` texts in the four supported formats.

Each sample is a template: :func:`render` fills ``{n}`` (line numbers, counts),
``{addr}`` / ``{hex}`` (addresses, offsets), ``{root}`` (the checkout or release
directory) and ``{venv}`` (where packages are installed) with values drawn from
a seed, so two renderings are the same defect seen on different hosts, after
edits elsewhere in the files, or in another run.
"""

from __future__ import annotations

import random
import re

ROOTS = ("/app", "/home/ci/builds/8812/shop", "/srv/releases/20240301120000", "C:\\work\\shop")
VENVS = ("/app/.venv", "/usr/local", "/opt/venvs/shop-3", "/home/dev/.pyenv/versions/3.11.8")

_PLACEHOLDER = re.compile(r"\{(n|addr|hex|root|venv)\}")
_WINDOWS_PATH = re.compile(r"\{root\}[\w./@-]+")


def render(template: str, seed: int) -> str:
    """Fill the placeholders of ``template`` with values drawn from ``seed``."""
    rng = random.Random(seed)
    root, venv = rng.choice(ROOTS), rng.choice(VENVS)
    if root.startswith("C:"):  # Windows paths are written with backslashes
        template = _WINDOWS_PATH.sub(lambda match: match.group(0).replace("/", "\\"), template)

    def fill(match: re.Match[str]) -> str:
        kind = match.group(1)
        if kind == "n":
            return str(rng.randint(1, 2999))
        if kind == "addr":
            return f"{rng.getrandbits(40):010x}"
        if kind == "hex":
            return f"{rng.getrandbits(12):x}"
        return root if kind == "root" else venv

    return _PLACEHOLDER.sub(fill, template)


PYTHON_CHAINED = """\
Traceback (most recent call last):
  File "{root}/orders/pricing.py", line {n}, in unit_price
    return catalog[sku]["price"]
           ~~~~~~~^^^^^
KeyError: 'SKU-1042'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "{venv}/lib/python3.11/site-packages/flask/app.py", line {n}, in wsgi_app
    response = self.full_dispatch_request()
               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "{venv}/lib/python3.11/site-packages/flask/app.py", line {n}, in full_dispatch_request
    rv = self.dispatch_request()
         ^^^^^^^^^^^^^^^^^^^^^^^
  File "{venv}/lib/python3.11/site-packages/flask/app.py", line {n}, in dispatch_request
    return self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "{root}/orders/api.py", line {n}, in create_order
    total = service.place(payload)
            ^^^^^^^^^^^^^^^^^^^^^^
  File "{root}/orders/service.py", line {n}, in place
    return sum(pricing.unit_price(item.sku) * item.qty for item in order.items)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "{root}/orders/service.py", line {n}, in <genexpr>
    return sum(pricing.unit_price(item.sku) * item.qty for item in order.items)
               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "{root}/orders/pricing.py", line {n}, in unit_price
    raise PricingError(f"no price for {sku}") from exc
orders.pricing.PricingError: no price for SKU-1042
"""

PYTHON_DURING_HANDLING = """\
Traceback (most recent call last):
  File "{venv}/lib/python3.11/site-packages/psycopg/connection.py", line {n}, in connect
    raise last_ex.with_traceback(None)
psycopg.OperationalError: connection failed: Connection refused

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "{root}/jobs/nightly.py", line {n}, in <module>
    main()
  File "{root}/jobs/nightly.py", line {n}, in main
    export_ledger(conn_factory())
                  ^^^^^^^^^^^^^^
  File "{root}/jobs/db.py", line {n}, in conn_factory
    return psycopg.connect(DSN, connect_timeout=5)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "{venv}/lib/python3.11/site-packages/psycopg/connection.py", line {n}, in connect
    raise type(last_ex)("\\n".join(str(ex) for ex in errors))
  File "{root}/jobs/db.py", line {n}, in __exit__
    self.pool.putconn(self.conn)
    ^^^^^^^^^^^^^^^^^
AttributeError: 'NoneType' object has no attribute 'putconn'
"""

PYTHON_GROUP = """\
  + Exception Group Traceback (most recent call last):
  |   File "{root}/sync/worker.py", line {n}, in <module>
  |     asyncio.run(main())
  |   File "/usr/lib/python3.11/asyncio/runners.py", line {n}, in run
  |     return runner.run(main)
  |            ^^^^^^^^^^^^^^^^
  |   File "/usr/lib/python3.11/asyncio/runners.py", line {n}, in run
  |     return self._loop.run_until_complete(task)
  |            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |   File "/usr/lib/python3.11/asyncio/base_events.py", line {n}, in run_until_complete
  |     return future.result()
  |            ^^^^^^^^^^^^^^^
  |   File "{root}/sync/worker.py", line {n}, in main
  |     async with asyncio.TaskGroup() as group:
  |   File "/usr/lib/python3.11/asyncio/taskgroups.py", line {n}, in __aexit__
  |     raise me from None
  | ExceptionGroup: unhandled errors in a TaskGroup (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File "{root}/sync/inventory.py", line {n}, in fetch_stock
    |     response.raise_for_status()
    |   File "{venv}/lib/python3.11/site-packages/httpx/_models.py", line {n}, in raise_for_status
    |     raise HTTPStatusError(message, request=request, response=self)
    | httpx.HTTPStatusError: Server error '503 Service Unavailable' for url 'http://inv:8080/s/17'
    +---------------- 2 ----------------
    | Traceback (most recent call last):
    |   File "{root}/sync/inventory.py", line {n}, in fetch_prices
    |     return float(row["price"])
    |            ^^^^^^^^^^^^^^^^^^^
    | ValueError: could not convert string to float: 'n/a'
    +------------------------------------
"""

PYTHON_LIBRARY_ONLY = """\
Traceback (most recent call last):
  File "/usr/lib/python3.11/threading.py", line {n}, in _bootstrap_inner
    self.run()
  File "/usr/lib/python3.11/threading.py", line {n}, in run
    self._target(*self._args, **self._kwargs)
  File "{venv}/lib/python3.11/site-packages/urllib3/connectionpool.py", line {n}, in urlopen
    conn = self._get_conn(timeout=pool_timeout)
  File "<frozen importlib._bootstrap>", line {n}, in _find_and_load
  File "{venv}/lib/python3.11/site-packages/urllib3/__init__.py", line {n}, in <module>
    raise ImportError("urllib3 v2 only supports OpenSSL 1.1.1+")
ImportError: urllib3 v2 only supports OpenSSL 1.1.1+
"""

JAVA_SPRING = """\
org.springframework.web.util.NestedServletException: Request processing failed; nested exception \
is java.lang.IllegalStateException: Order 8812 has no lines
\tat org.springframework.web.servlet.FrameworkServlet.processRequest(FrameworkServlet.java:{n})
\tat org.springframework.web.servlet.FrameworkServlet.doPost(FrameworkServlet.java:{n})
\tat javax.servlet.http.HttpServlet.service(HttpServlet.java:{n})
\tat org.apache.catalina.core.ApplicationFilterChain.internalDoFilter(ApplicationFilterChain.java:{n})
\tat org.apache.tomcat.util.threads.TaskThread$WrappingRunnable.run(TaskThread.java:{n})
\tat java.base/java.lang.Thread.run(Thread.java:{n})
Caused by: java.lang.IllegalStateException: Order 8812 has no lines
\tat com.acme.shop.orders.OrderService.lambda$checkout$0(OrderService.java:{n})
\tat java.base/java.util.Optional.orElseThrow(Optional.java:{n})
\tat com.acme.shop.orders.OrderService.checkout(OrderService.java:{n})
\tat com.acme.shop.orders.OrderService$$EnhancerBySpringCGLIB$${addr}.checkout(<generated>)
\tat jdk.internal.reflect.GeneratedMethodAccessor{n}.invoke(Unknown Source)
\tat java.base/jdk.internal.reflect.DelegatingMethodAccessorImpl.invoke(DelegatingMethodAccessorImpl.java:{n})
\tat java.base/java.lang.reflect.Method.invoke(Method.java:{n})
\tat app//com.acme.shop.web.CheckoutController.submit(CheckoutController.java:{n}) ~[shop.jar:?]
\tat com.acme.shop.web.CheckoutController$$Lambda${n}/0x0000{addr}.apply(Unknown Source)
\t... {n} more
\tSuppressed: java.io.UncheckedIOException: audit log closed
\t\tat com.acme.shop.audit.AuditLog.close(AuditLog.java:{n})
\t\tat com.acme.shop.orders.OrderService.checkout(OrderService.java:{n})
\t\t... {n} more
"""

JAVA_LIBRARY_ONLY = """\
java.lang.OutOfMemoryError: Java heap space
\tat java.base/java.util.Arrays.copyOf(Arrays.java:{n})
\tat java.base/java.lang.AbstractStringBuilder.ensureCapacityInternal(AbstractStringBuilder.java:{n})
\tat java.base/java.lang.StringBuilder.append(StringBuilder.java:{n})
\tat java.base/java.lang.Thread.run(Thread.java:{n})
"""

KOTLIN_COROUTINE = """\
kotlinx.coroutines.JobCancellationException: Job was cancelled; job=SupervisorJobImpl{Cancelling}@{addr}
\tat com.acme.feed.FeedPoller$poll$2.invokeSuspend(FeedPoller.kt:{n})
\tat kotlin.coroutines.jvm.internal.BaseContinuationImpl.resumeWith(ContinuationImpl.kt:{n})
\tat kotlinx.coroutines.DispatchedTask.run(DispatchedTask.kt:{n})
\tat kotlinx.coroutines.scheduling.CoroutineScheduler$Worker.run(CoroutineScheduler.kt:{n})
"""

NODE_EXPRESS = """\
TypeError: Cannot read properties of undefined (reading 'id')
    at toInvoice ({root}/src/billing/invoice.js:{n}:{n})
    at Array.map (<anonymous>)
    at InvoiceService.buildAll ({root}/src/billing/service.js:{n}:{n})
    at async Promise.all (index 0)
    at async handler ({root}/src/routes/billing.js:{n}:{n})
    at Layer.handle [as handle_request] ({root}/node_modules/express/lib/router/layer.js:{n}:{n})
    at next ({root}/node_modules/express/lib/router/route.js:{n}:{n})
    at processTicksAndRejections (node:internal/process/task_queues:{n}:{n})
"""

NODE_ESM = """\
Error: connect ECONNREFUSED 10.0.3.7:5432
    at new Pool (file://{root}/node_modules/.pnpm/pg-pool@3.6.1/node_modules/pg-pool/index.js:{n}:{n})
    at file://{root}/src/db.mjs:{n}:{n}
    at ModuleJob.run (node:internal/modules/esm/module_job:{n}:{n})
    at eval (eval at compile ({root}/src/templates.mjs:{n}:{n}), <anonymous>:{n}:{n})
    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:{n}:{n})
"""

NODE_LIBRARY_ONLY = """\
Error: ENOENT: no such file or directory, open '/etc/shop/config.json'
    at Object.openSync (node:fs:{n}:{n})
    at Object.readFileSync (node:fs:{n}:{n})
    at Module._extensions..js (node:internal/modules/cjs/loader:{n}:{n})
"""

GO_PANIC = """\
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x{addr}]

goroutine {n} [running]:
github.com/acme/ledger/internal/accounts.(*Store).Balance(0x0, {0x{addr}, 0xc000{addr}}, 0x{hex})
\t{root}/internal/accounts/store.go:{n} +0x{hex}
github.com/acme/ledger/internal/api.(*Server).handleBalance(0xc000{addr}, {0x{addr}, 0xc000{addr}})
\t{root}/internal/api/balance.go:{n} +0x{hex}
net/http.HandlerFunc.ServeHTTP(0x{addr}?, {0x{addr}?, 0xc000{addr}?}, 0x{addr}?)
\t/usr/local/go/src/net/http/server.go:{n} +0x{hex}
net/http.(*ServeMux).ServeHTTP(...)
\t/usr/local/go/src/net/http/server.go:{n} +0x{hex}
net/http.serverHandler.ServeHTTP({0xc000{addr}?}, {0x{addr}, 0xc000{addr}}, 0x6)
\t/usr/local/go/src/net/http/server.go:{n} +0x{hex}
net/http.(*conn).serve(0xc000{addr}, {0x{addr}, 0xc000{addr}})
\t/usr/local/go/src/net/http/server.go:{n} +0x{hex}
created by net/http.(*Server).Serve in goroutine {n}
\t/usr/local/go/src/net/http/server.go:{n} +0x{hex}

goroutine 1 [IO wait]:
internal/poll.runtime_pollWait(0x7f{addr}, 0x72)
\t/usr/local/go/src/runtime/netpoll.go:{n} +0x{hex}
github.com/acme/ledger/cmd/ledger.main()
\t{root}/cmd/ledger/main.go:{n} +0x{hex}
exit status 2
"""

GO_DEBUG_STACK = """\
goroutine {n} [running]:
runtime/debug.Stack()
\t/usr/local/go/src/runtime/debug/stack.go:24 +0x5e
github.com/acme/ledger/internal/worker.(*Pool).recoverJob(0xc000{addr}, 0x{addr})
\t{root}/internal/worker/pool.go:{n} +0x{hex}
panic({0x{addr}?, 0xc000{addr}?})
\t/usr/local/go/src/runtime/panic.go:{n} +0x{hex}
github.com/acme/ledger/internal/worker.settle(...)
\t{root}/internal/worker/settle.go:{n}
gopkg.in/yaml.v3.(*decoder).unmarshal(0xc000{addr}, 0xc000{addr}, {0x{addr}?, 0xc000{addr}?})
\t/root/go/pkg/mod/gopkg.in/yaml.v3@v3.0.1/decode.go:{n} +0x{hex}
github.com/acme/ledger/internal/worker.(*Pool).run.func1()
\t{root}/internal/worker/pool.go:{n} +0x{hex}
created by github.com/acme/ledger/internal/worker.(*Pool).Start in goroutine 1
\t{root}/internal/worker/pool.go:{n} +0x{hex}
"""

GO_LIBRARY_ONLY = """\
fatal error: all goroutines are asleep - deadlock!

goroutine 1 [semacquire]:
sync.runtime_Semacquire(0xc000{addr}?)
\t/usr/local/go/src/runtime/sema.go:{n} +0x{hex}
sync.(*WaitGroup).Wait(0x{addr}?)
\t/usr/local/go/src/sync/waitgroup.go:{n} +0x{hex}
"""

#: Every sample, by name.
SAMPLES = {
    "python_chained": PYTHON_CHAINED,
    "python_during_handling": PYTHON_DURING_HANDLING,
    "python_group": PYTHON_GROUP,
    "python_library_only": PYTHON_LIBRARY_ONLY,
    "java_spring": JAVA_SPRING,
    "java_library_only": JAVA_LIBRARY_ONLY,
    "kotlin_coroutine": KOTLIN_COROUTINE,
    "node_express": NODE_EXPRESS,
    "node_esm": NODE_ESM,
    "node_library_only": NODE_LIBRARY_ONLY,
    "go_panic": GO_PANIC,
    "go_debug_stack": GO_DEBUG_STACK,
    "go_library_only": GO_LIBRARY_ONLY,
}
