"""Stable fingerprints: the same defect gets the same 16-hex-digit id everywhere.

A fingerprint hashes, for the exception and every exception chained to it
(``__cause__``, ``__context__`` unless suppressed, and the members of an
``ExceptionGroup``):

* the exception type, qualified as the OpenTelemetry SDK names it;
* the *in-app* frames of its traceback as ``module:function``, from the innermost
  module body being imported when the exception was raised during an import (the
  importer does not count: the defect is the module's, whoever imports it) — never line
  numbers, file paths or addresses, so edits elsewhere in a file, another
  checkout directory or another host do not change it. Consecutive repeats of
  the same frame (recursion) count once. Frames of the standard library and of
  installed packages (site-packages, dist-packages) count only when no in-app
  frame is left; faultlens' and wrapt's own frames never count;
* for a ``SyntaxError`` about a file (a module that does not compile), that file's
  module name (by the ``sys.path`` entry holding it) instead of frames: the defect is
  in the file, not in whoever imported it;
* when the exception has no usable frame (created but never raised, or only
  faultlens frames), its message with variable parts replaced by placeholders
  (:mod:`faultlens._parameterize`).

Function names are ``co_name`` rather than ``co_qualname`` so hosts running
different Python versions agree. Redaction happens after fingerprinting, so it
never changes a fingerprint.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import re
import site
import sys
import sysconfig
import threading
from collections.abc import Iterable, Iterator
from types import CodeType, TracebackType
from typing import Final

from faultlens._parameterize import parameterize
from faultlens._wrappers import HIDDEN_FILENAME
from faultlens.semconv import qualified_type_name

_HEX16 = re.compile(r"^[0-9a-f]{16}$")

#: At most this many exceptions of a chain or group count.
MAX_CHAIN: Final = 10
#: A traceback longer than this keeps its first and last frames only.
MAX_FRAMES: Final = 64

_INTERNAL, _LIBRARY, _IN_APP = 0, 1, 2
_GROUP_TYPES: tuple[type[BaseException], ...] = tuple(
    group for group in (vars(builtins).get("BaseExceptionGroup"),) if group is not None
)
_INTERNAL_PREFIXES: Final = ("faultlens.", "faultlens_collector.", "wrapt.")
_INTERNAL_EXACT: Final = frozenset({"faultlens", "faultlens_collector", "wrapt"})

FrameInfo = tuple[str, str, int]


def _library_roots() -> tuple[str, ...]:
    roots: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path)
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        vars_ = {"base": prefix, "platbase": prefix, "installed_base": prefix}
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            try:
                roots.add(sysconfig.get_path(key, vars=vars_))
            except (KeyError, ValueError):
                continue
    with contextlib.suppress(AttributeError):  # some embedded interpreters lack it
        roots.update(site.getsitepackages())
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if isinstance(user_site, str):
        roots.add(user_site)
    normalized = {os.path.normcase(os.path.abspath(root)).rstrip(os.sep) + os.sep for root in roots}
    return tuple(sorted(normalized, key=len, reverse=True))


class FrameClassifier:
    """Decides, per code object, whether a frame is faultlens-internal, library or in-app.

    ``in_app_include`` and ``in_app_exclude`` are module-name prefixes that
    override the path rules (``"myapp"`` covers ``myapp`` and ``myapp.*``): use
    them when the application itself is installed into site-packages.
    Answers are cached per code object (bounded; the cache is dropped when full).
    """

    _CACHE_LIMIT: Final = 50_000
    _FINGERPRINT_LIMIT: Final = 10_000

    def __init__(
        self, in_app_include: Iterable[str] = (), in_app_exclude: Iterable[str] = ()
    ) -> None:
        self._roots = _library_roots()
        self._include = tuple(in_app_include)
        self._exclude = tuple(in_app_exclude)
        self._cache: dict[CodeType, FrameInfo] = {}
        self._lock = threading.Lock()
        #: Chain shape → (fingerprint, code objects kept alive); see fingerprint_exception.
        self.fingerprints: dict[tuple[object, ...], tuple[str, tuple[CodeType, ...]]] = {}

    def remember_fingerprint(
        self, key: tuple[object, ...], value: tuple[str, tuple[CodeType, ...]]
    ) -> None:
        """Cache a computed fingerprint (bounded: the cache is dropped when full)."""
        if len(self.fingerprints) >= self._FINGERPRINT_LIMIT:
            with self._lock:
                self.fingerprints = {}
        self.fingerprints[key] = value

    def info(self, code: CodeType, module: str) -> FrameInfo:
        """Return ``(module, function, kind)`` for a frame running ``code`` in ``module``."""
        cached = self._cache.get(code)
        if cached is not None:
            return cached
        result = (module, code.co_name, self._kind(module, code.co_filename))
        if len(self._cache) >= self._CACHE_LIMIT:
            with self._lock:
                self._cache = {}
        self._cache[code] = result
        return result

    def _kind(self, module: str, filename: str) -> int:
        if filename == HIDDEN_FILENAME:  # a capture wrapper (its globals are its caller's)
            return _INTERNAL
        if module in _INTERNAL_EXACT or module.startswith(_INTERNAL_PREFIXES):
            return _INTERNAL
        if _matches(module, self._exclude):
            return _LIBRARY
        if _matches(module, self._include):
            return _IN_APP
        if filename.startswith("<"):
            return _LIBRARY if filename.startswith("<frozen") else _IN_APP
        path = os.path.normcase(os.path.abspath(filename))
        if os.sep + "site-packages" + os.sep in path or os.sep + "dist-packages" + os.sep in path:
            return _LIBRARY
        if path.startswith(self._roots):
            return _LIBRARY
        return _IN_APP


def _matches(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def _walk_frames(tb: TracebackType | None, classifier: FrameClassifier) -> list[FrameInfo]:
    frames: list[FrameInfo] = []
    previous: FrameInfo | None = None
    tb = from_failed_import(tb)
    while tb is not None:
        frame = tb.tb_frame
        info = classifier.info(frame.f_code, frame.f_globals.get("__name__") or "?")
        if info != previous:
            frames.append(info)
            previous = info
        tb = tb.tb_next
    if len(frames) > MAX_FRAMES:
        head = MAX_FRAMES // 4
        frames = frames[:head] + frames[-(MAX_FRAMES - head) :]
    return frames


def from_failed_import(tb: TracebackType | None) -> TracebackType | None:
    """The traceback from its innermost module body entered below the first frame (a
    module being imported, or run by ``runpy``/``exec``): an exception raised while a
    module is imported is a defect of that module, whoever imported it — a script, a
    test runner or ``faultlens scan``."""
    start = tb
    current = tb.tb_next if tb is not None else None
    while current is not None:
        if current.tb_frame.f_code.co_name == "<module>":
            start = current
        current = current.tb_next
    return start


def _syntax_file(exc: BaseException) -> str | None:
    """The file a ``SyntaxError`` (``IndentationError``, ``TabError``) is about, if real."""
    if isinstance(exc, SyntaxError) and exc.filename and not exc.filename.startswith("<"):
        return str(exc.filename)
    return None


def _module_of_file(filename: str) -> str:
    """The module a file is, by the longest ``sys.path`` entry holding it (its name when
    none does): the same on every host, wherever the code is checked out or installed."""
    path = os.path.abspath(filename)
    best = ""
    for entry in sys.path:
        root = os.path.abspath(entry or os.curdir).rstrip(os.sep) + os.sep
        if path.startswith(root) and len(root) > len(best):
            best = root
    relative = path[len(best) :] if best else os.path.basename(path)
    stem = relative.removesuffix(".py").removesuffix(os.sep + "__init__")
    return stem.replace(os.sep, ".")


def iter_chain(exc: BaseException, limit: int = MAX_CHAIN) -> Iterator[BaseException]:
    """Yield ``exc`` and the exceptions chained to it, each once, at most ``limit``.

    Order: the exception itself, then (depth first) its ``__cause__`` or its
    ``__context__`` (unless ``__suppress_context__``), then the members of an
    exception group.
    """
    seen: set[int] = set()
    stack = [exc]
    while stack and len(seen) < limit:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested: list[BaseException] = []
        if current.__cause__ is not None:
            nested.append(current.__cause__)
        elif current.__context__ is not None and not current.__suppress_context__:
            nested.append(current.__context__)
        members = getattr(current, "exceptions", None)
        if isinstance(members, (tuple, list)):
            nested.extend(member for member in members if isinstance(member, BaseException))
        stack.extend(reversed(nested))


def safe_message(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when the exception's ``__str__`` raises."""
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"


def hash_parts(parts: Iterable[str]) -> str:
    """Hash canonical text parts into a 16-lowercase-hex fingerprint."""
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1e")
    return digest.hexdigest()


def normalize_fingerprint(value: str) -> str:
    """Keep a 16-hex fingerprint as is; hash any other string into that form."""
    lowered = value.strip().lower()
    if _HEX16.match(lowered):
        return lowered
    return hash_parts(("explicit", value))


def _chain(exc: BaseException) -> list[BaseException]:
    """The exceptions :func:`iter_chain` yields, with a fast path for a lone exception."""
    if (
        _GROUP_TYPES  # before 3.11 groups come from a backport: take the general path
        and exc.__cause__ is None
        and (exc.__context__ is None or exc.__suppress_context__)
        and not isinstance(exc, _GROUP_TYPES)
    ):
        return [exc]
    return list(iter_chain(exc))


def _codes(tb: TracebackType | None) -> list[CodeType]:
    codes = []
    while tb is not None:
        codes.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    return codes


def fingerprint_exception(exc: BaseException, classifier: FrameClassifier) -> str:
    """Compute the fingerprint of ``exc`` and its chain (see the module docstring).

    Results are cached per chain shape (exception types and the code objects of
    every traceback frame), so a repeated failure costs a traceback walk and a
    dictionary lookup. Chains with a member that has no frame are not cached:
    their fingerprint depends on the message.
    """
    members = _chain(exc)
    key: list[object] = []
    codes_kept: list[CodeType] = []
    for member in members:
        codes = _codes(member.__traceback__)
        if not codes or (isinstance(member, SyntaxError) and _syntax_file(member)):
            # No frame, or a defect in a file no frame shows: not cached.
            return _compute(members, classifier)
        key.append(type(member))
        key.extend(map(id, codes))
        key.append(None)
        codes_kept.extend(codes)
    frozen = tuple(key)
    cached = classifier.fingerprints.get(frozen)
    if cached is not None:
        return cached[0]
    fingerprint = _compute(members, classifier)
    # The value keeps the code objects alive so that their ids cannot be reused.
    classifier.remember_fingerprint(frozen, (fingerprint, tuple(codes_kept)))
    return fingerprint


def _compute(members: list[BaseException], classifier: FrameClassifier) -> str:
    parts: list[str] = []
    for member in members:
        broken = _syntax_file(member)
        if broken:
            parts.append(qualified_type_name(type(member)) + "!" + _module_of_file(broken))
            continue
        frames = _walk_frames(member.__traceback__, classifier)
        chosen = [f for f in frames if f[2] == _IN_APP] or [f for f in frames if f[2] == _LIBRARY]
        type_name = qualified_type_name(type(member))
        if chosen:
            parts.append(type_name + "@" + ";".join(f"{m}:{fn}" for m, fn, _ in chosen))
        else:
            parts.append(type_name + "#" + parameterize(safe_message(member)))
    return hash_parts(parts)
