"""Frames out of ``exception.stacktrace`` text: Python, Java, JavaScript/Node and Go.

:func:`parse_frames` reads the text any OpenTelemetry SDK puts in
``exception.stacktrace`` and returns its frames as :class:`Frame` (module,
function, library or not) — never line numbers, columns, addresses or offsets,
so the same defect reads the same on every host and after edits elsewhere.

The format is the one of the first frame line found; later lines are read in
that format only (a Java trace quoted in a Python exception's message does not
mix in). Recognised:

* **Python** tracebacks: ``File "/app/orders/service.py", line 42, in place``,
  chained sections ("During handling of the above exception…", "The above
  exception was the direct cause…") and the ``| ``-framed members of an
  ExceptionGroup. Every section's frames count, in the order printed.
* **Java** (and Kotlin, Scala): ``at com.acme.Orders.place(Orders.java:42)``,
  with ``Caused by:``, ``Suppressed:`` and ``... 12 more`` lines; class-loader
  and module prefixes (``app//``, ``java.base/``) are dropped, and so are the
  counters and addresses the JVM invents per run (``$$Lambda$14/0x…``,
  ``$Proxy12``, ``GeneratedMethodAccessor7``, CGLIB/ByteBuddy/Hibernate proxy
  suffixes, anonymous-class numbers ``$1``, ``lambda$main$0``, ``access$000``).
* **JavaScript / Node** (V8): ``at fn (file:line:col)``, ``at file:line:col``,
  ``at async fn (…)``, ``at new Foo (…)``, ``at fn [as alias] (…)``,
  ``<anonymous>``, ``native``, ``eval at …`` locations, ``file://`` and
  ``http(s)://`` URLs.
* **Go**: panic and ``runtime/debug.Stack()`` traces (a function line such as
  ``main.(*Server).handle(0xc000010000, {0x1, 0x2})`` then
  ``\\t/app/server.go:42 +0x1d``), ``created by …`` lines, and the
  ``pkg.Func`` / ``\\tfile:line`` pairs of ``github.com/pkg/errors``. Only the
  first goroutine counts: with ``GOTRACEBACK=all`` the others are bystanders.

Modules:

* Python — a library file's dotted module path after ``site-packages/``,
  ``dist-packages/`` or the standard library directory (``lib/python3.X/``,
  Windows ``Lib/``); ``<frozen importlib._bootstrap>`` reads
  ``importlib._bootstrap``. An application file's module is its path relative to
  the directory all application files of the trace share, dotted, without
  ``.py`` — a lone file is its stem — so another checkout directory or host does
  not change it.
* Java — the class name. Go — the package path. JavaScript — the path after the
  last ``node_modules/`` for packages, ``node:…`` for core modules, and for the
  application's files their path relative to the shared directory, ``/``-joined,
  without the extension (``.js``, ``.mjs``, ``.ts``, …).

``library`` marks frames that count only when nothing else is left (the SDK's
rule, :mod:`faultlens._fingerprint`): the Python standard library and installed
packages; ``java.*``, ``javax.*``, ``jakarta.*``, ``sun.*``, ``com.sun.*``,
``jdk.*``, ``kotlin.*``, ``kotlinx.*``, ``scala.*``, ``android.*``,
``androidx.*``, ``dalvik.*``; ``node_modules``, Node core and V8 built-ins;
Go's standard library (``runtime``, ``net/http``, …) and modules from the module
cache, ``vendor/`` or a ``path@version`` directory.

Bounds: the input is cut to :data:`MAX_INPUT_CHARS` (its head and tail are
kept, as the SDK clips traces), lines longer than :data:`MAX_LINE_CHARS` are
skipped, and at most :data:`MAX_FRAMES` frames are returned (the first quarter
and the rest from the end). The cost is linear in the input; nothing raises —
unrecognised text gives ``[]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

#: Longer input keeps its first and last halves of this many characters.
MAX_INPUT_CHARS: Final = 256 * 1024
#: No frame line in any supported format is longer than this.
MAX_LINE_CHARS: Final = 4096
#: At most this many frames come back: the first quarter, then the last ones.
MAX_FRAMES: Final = 256


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame: which module, which function, and whether it is library code."""

    module: str
    function: str
    library: bool


class _Raw(NamedTuple):
    """A frame as read from one line. When ``join`` is set, ``name`` is an
    application file path (``/``-separated, extension removed) still to be made
    relative to the trace's shared directory and joined with ``join``."""

    name: str
    function: str
    library: bool
    join: str = ""


_Parser = Callable[[Sequence[str], int], "_Raw | None"]


# --- Python ----------------------------------------------------------------

_PY_FILE: Final = re.compile(r'File "(.*)", line (?:\d+|None)(?:, in (.+))?$')
_PY_STDLIB: Final = re.compile(r"/lib/(?:python|pypy)[\d.]*t?/(?:lib-dynload/)?|/Lib/")
_PY_SOURCE_SUFFIXES: Final = (".py", ".pyc", ".pyo", ".pyw", ".pyx")
_PY_PSEUDO_COUNTER: Final = re.compile(r"-[0-9a-f]*\d[0-9a-f]*")


def _python(lines: Sequence[str], index: int) -> _Raw | None:
    # ExceptionGroup members are drawn inside "| " and "+-+" margins.
    body = lines[index].lstrip(" \t|+")
    if not body.startswith('File "'):
        return None
    match = _PY_FILE.match(body)
    if match is None:
        return None
    path, function = match.group(1), (match.group(2) or "").strip()
    if path.startswith("<"):  # <frozen importlib._bootstrap>, <string>, <stdin>
        if path.startswith("<frozen ") and path.endswith(">"):
            return _Raw(path[8:-1], function, True)
        return _Raw(_PY_PSEUDO_COUNTER.sub("", path), function, False)
    path = path.replace("\\", "/")
    for marker in ("/site-packages/", "/dist-packages/"):
        cut = path.rfind(marker)
        if cut >= 0:
            return _Raw(_python_module(path[cut + len(marker) :]), function, True)
    stdlib = _PY_STDLIB.search(path)
    if stdlib is not None:
        return _Raw(_python_module(path[stdlib.end() :]), function, True)
    stem = _python_stem(path)
    if stem.endswith("/__init__"):
        stem = stem[: -len("/__init__")]
    return _Raw(stem, function, False, ".")


def _python_stem(path: str) -> str:
    """``path`` without its Python source suffix, or an extension module's ABI tag."""
    head, slash, last = path.rpartition("/")
    if last.endswith(_PY_SOURCE_SUFFIXES):
        last = last.rpartition(".")[0]
    elif last.endswith((".so", ".pyd")):
        last = last.partition(".")[0]
    return head + slash + last


def _python_module(relative: str) -> str:
    parts = _python_stem(relative).split("/")
    if len(parts) > 1 and parts[-1] == "__init__":
        parts.pop()
    return ".".join(part for part in parts if part)


# --- Java ------------------------------------------------------------------

_JAVA_FRAME: Final = re.compile(r"at ([^\s()]+)\(([^()]*)\)(?:\s.*)?$")
#: "$$Lambda$14/0x0000000800c03000" (JDK 9+) and "$$Lambda$1/1283928880" (JDK 8).
_JAVA_ADDRESS: Final = re.compile(r"/(?:0x[0-9a-fA-F]+|\d+)(?=\.)")
_JAVA_SYNTHETIC: Final = re.compile(
    r"(\$\$Lambda|\$Proxy|GeneratedMethodAccessor|GeneratedConstructorAccessor"
    r"|GeneratedSerializationConstructorAccessor)\$?\d+"
    r"|(\$(?:HibernateProxy|ByteBuddy|MockitoMock))\$\w+"
    r"|\$\$[0-9a-fA-F]+(?=\$|$)"
    r"|(\$)\d+(?=\$|$)"
)
_JAVA_METHOD_COUNTER: Final = re.compile(r"[$-]\d+$")
_JAVA_LIBRARY: Final = (
    "java.",
    "javax.",
    "jakarta.",
    "sun.",
    "com.sun.",
    "jdk.",
    "kotlin.",
    "kotlinx.",
    "scala.",
    "android.",
    "androidx.",
    "dalvik.",
)


def _java_synthetic(match: re.Match[str]) -> str:
    return match.group(1) or match.group(2) or match.group(3) or ""


def _java(lines: Sequence[str], index: int) -> _Raw | None:
    body = lines[index].lstrip()
    if not body.startswith("at "):
        return None
    match = _JAVA_FRAME.match(body)
    if match is None:
        return None
    name = match.group(1)
    if "/" in name:  # "java.base/java.lang.Thread.run", "app//com.acme.Main.main"
        name = _JAVA_ADDRESS.sub("", name).rpartition("/")[2]
    cls, _, method = name.rpartition(".")
    if not cls or not method:
        return None
    if "$" in cls or "Accessor" in cls:
        cls = _JAVA_SYNTHETIC.sub(_java_synthetic, cls)
    if "$" in method:
        method = _JAVA_METHOD_COUNTER.sub("", method)
    return _Raw(cls, method, cls.startswith(_JAVA_LIBRARY))


# --- JavaScript / Node -------------------------------------------------------

_JS_SUFFIXES: Final = frozenset({"js", "mjs", "cjs", "jsx", "ts", "tsx", "mts", "cts"})
_JS_BUILTIN_LOCATIONS: Final = frozenset({"<anonymous>", "native", "unknown location"})
_JS_CORE_PREFIXES: Final = ("node:", "internal/", "ext:")


def _js(lines: Sequence[str], index: int) -> _Raw | None:
    body = lines[index].strip()
    if not body.startswith("at "):
        return None
    body = body[3:]
    open_paren = body.find(" (")
    if open_paren > 0 and body.endswith(")"):
        function, location = body[:open_paren], body[open_paren + 2 : -1]
    else:
        function, location = "", body
    for prefix in ("async ", "new "):
        if function.startswith(prefix):
            function = function[len(prefix) :]
    alias = function.find(" [as ")
    if alias >= 0:
        function = function[:alias]
    function = function or "<anonymous>"
    if location.startswith("eval at "):  # "eval at run (/app/x.js:3:9), <anonymous>:1:1"
        inner_open = location.rfind("(")
        inner_close = location.find(")", inner_open)
        location = location[inner_open + 1 : inner_close] if 0 <= inner_open < inner_close else ""
    if location in _JS_BUILTIN_LOCATIONS or (
        location.startswith("index ") and location[6:].isdigit()  # Promise.all (index 0)
    ):
        return _Raw("<native>", function, True) if function != "<anonymous>" else None
    path, positioned = _strip_position(location)
    if not positioned or not path or (function == "<anonymous>" and " " in path):
        return None  # prose such as "at least 3:00:00" is no frame
    return _js_file(path, function)


def _strip_position(location: str) -> tuple[str, bool]:
    """``file:line:col`` or ``file:line`` → (file, True); anything else → (location, False)."""
    head, colon, tail = location.rpartition(":")
    if not (colon and tail.isdigit()):
        return location, False
    inner, colon, tail = head.rpartition(":")
    return (inner if colon and tail.isdigit() else head), True


def _js_file(path: str, function: str) -> _Raw:
    path = path.replace("\\", "/")
    if path.startswith("file://"):
        path = path[7:]
    elif "://" in path:  # http(s)://host/static/app.js, webpack:///./src/x.js
        rest = path.partition("://")[2]
        slash = rest.find("/")
        path = rest[slash:] if slash >= 0 else rest
    path = path.partition("?")[0].partition("#")[0].replace("/./", "/")
    stem = _js_stem(path)
    cut = stem.rfind("node_modules/")
    if cut >= 0:
        return _Raw(stem[cut + len("node_modules/") :], function, True)
    if stem.startswith(_JS_CORE_PREFIXES) or "/" not in stem:  # node:fs, old core "events.js"
        return _Raw(stem, function, True)
    return _Raw(stem, function, False, "/")


def _js_stem(path: str) -> str:
    head, slash, last = path.rpartition("/")
    stem, dot, suffix = last.rpartition(".")
    return head + slash + stem if dot and stem and suffix in _JS_SUFFIXES else path


# --- Go -------------------------------------------------------------------------

_GO_FILE: Final = re.compile(r"\t(.+):\d+(?: \+0x[0-9a-fA-F]+)?$")
_GO_GOROUTINE: Final = re.compile(r"goroutine \d+ \[")
_GO_MAJOR: Final = re.compile(r"v\d+\.")
_GO_STD_NAMES: Final = (
    "archive arena bufio builtin bytes cmp compress container context crypto database debug "
    "embed encoding errors expvar flag fmt go hash html image index internal io iter log maps "
    "math mime net os path plugin reflect regexp runtime slices sort strconv strings structs "
    "sync syscall testing text time unicode unique unsafe vendor weak"
)
#: First elements of the standard library's import paths (go/src at the top level).
_GO_STD_ROOTS: Final = frozenset(_GO_STD_NAMES.split())


def _go(lines: Sequence[str], index: int) -> _Raw | None:
    line = lines[index]
    if index + 1 >= len(lines) or not line or line[0] in " \t":
        return None
    location = _GO_FILE.match(lines[index + 1])
    if location is None:
        return None
    name = line.rstrip()
    if name.startswith("created by "):  # "created by net/http.(*Server).Serve in goroutine 1"
        name = name[len("created by ") :].partition(" in goroutine ")[0]
    elif name.endswith(")"):
        name = name[: max(name.rfind("("), 0)]
    if not name or " " in name:
        return None
    package, function = _go_split(name)
    return _Raw(package, function, _go_library(package, location.group(1)))


def _go_split(name: str) -> tuple[str, str]:
    """``github.com/a/b.(*T).M`` → (``github.com/a/b``, ``(*T).M``); ``panic`` → runtime."""
    dot = name.find(".", name.rfind("/") + 1)
    if dot < 0:
        return "runtime", name
    package, function = name[:dot], name[dot + 1 :]
    major = _GO_MAJOR.match(function)  # gopkg.in/yaml.v3.Unmarshal: ".v3" names the package
    if major is not None and "/" in package:
        package, function = package + "." + function[: major.end() - 1], function[major.end() :]
    return package, function


def _go_library(package: str, file: str) -> bool:
    if package == "main":
        return False
    file = file.replace("\\", "/")
    if "/pkg/mod/" in file or "/vendor/" in file or "@v" in file:
        return True
    return package.partition("/")[0] in _GO_STD_ROOTS


# --- the driver -------------------------------------------------------------------

_PARSERS: Final[tuple[_Parser, ...]] = (_python, _java, _js, _go)


def parse_frames(stacktrace: str) -> list[Frame]:
    """Return the frames of ``stacktrace`` in printed order (see the module docstring).

    Never raises: text in no supported format, or anything but a string, gives ``[]``.
    """
    return [Frame(*frame) for frame in read_frames(stacktrace)]


def read_frames(stacktrace: str) -> list[tuple[str, str, bool]]:
    """:func:`parse_frames` as plain ``(module, function, library)`` tuples — a third
    cheaper, for the fingerprint's hot path."""
    if not isinstance(stacktrace, str) or not stacktrace:
        return []
    try:
        return _resolve(_read(_clip(stacktrace).splitlines()))
    except Exception:  # a parser bug must not lose the failure it describes
        return []


def _clip(text: str) -> str:
    if len(text) <= MAX_INPUT_CHARS:
        return text
    half = MAX_INPUT_CHARS // 2
    head, tail = text[:half], text[-half:]
    # Drop the lines cut in two: half a frame line could read as another frame.
    return head[: head.rfind("\n") + 1] + tail[tail.find("\n") + 1 :]


def _read(lines: Sequence[str]) -> list[_Raw]:
    raws: list[_Raw] = []
    parser: _Parser | None = None
    for index, line in enumerate(lines):
        if len(line) > MAX_LINE_CHARS:
            continue
        if parser is None:
            for candidate in _PARSERS:
                raw = candidate(lines, index)
                if raw is not None:
                    parser = candidate
                    break
        else:
            if (
                parser is _go
                and raws
                and line.startswith("goroutine ")
                and _GO_GOROUTINE.match(line)
            ):
                break  # the next goroutine's frames have nothing to do with this failure
            raw = parser(lines, index)
        if raw is not None:
            raws.append(raw)
    if len(raws) > MAX_FRAMES:
        head = MAX_FRAMES // 4
        raws = raws[:head] + raws[-(MAX_FRAMES - head) :]
    return raws


def _resolve(raws: list[_Raw]) -> list[tuple[str, str, bool]]:
    """Turn application file paths into modules relative to the directory they share."""
    directories = {tuple(raw.name.split("/")[:-1]) for raw in raws if raw.join}
    if not directories:
        return [(raw.name, raw.function, raw.library) for raw in raws]
    shared = _shared_prefix(directories)
    frames = []
    for raw in raws:
        module = raw.name
        if raw.join:
            parts = module.split("/")[shared:]
            module = raw.join.join(part for part in parts if part) or module
        frames.append((module, raw.function, raw.library))
    return frames


def _shared_prefix(directories: set[tuple[str, ...]]) -> int:
    """How many leading path components all ``directories`` have in common."""
    first, *others = directories
    length = len(first)
    for other in others:
        length = min(length, len(other))
        for position in range(length):
            if other[position] != first[position]:
                length = position
                break
    return length
