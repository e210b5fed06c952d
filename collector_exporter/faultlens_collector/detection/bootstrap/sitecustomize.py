"""``faultlens run``'s bootstrap: Python imports this module at start-up (``site``)
because ``faultlens run`` puts its folder first on ``PYTHONPATH``; it starts capture
in this process (:mod:`faultlens_collector.detection.child`), then runs the
``sitecustomize`` it shadows, if there is one. It never fails the program: a Python
that cannot import faultlens (another environment) runs untouched.
"""


def _start() -> None:
    try:
        from faultlens_collector.detection.child import start
    except Exception:
        return
    start()


def _chain() -> None:
    import importlib.machinery
    import importlib.util
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None or spec.origin == __file__:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[__name__] = module
    spec.loader.exec_module(module)


_start()
_chain()
