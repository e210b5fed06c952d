"""Detection before shipping: ``faultlens scan`` and ``faultlens run``.

* :mod:`.project` — which packages and modules are the project's own;
* :mod:`.scan` and :mod:`.scan_worker` — import every module, byte-compile every
  file, load every entry point and run every console script with ``--help``, in
  isolated worker processes;
* :mod:`.run` and :mod:`.bootstrap` — run a command with zero-code capture in
  every Python process it starts, into an embedded processor;
* :mod:`.report` — the report both write (JSON in the shape of ``schema.json``,
  or JSONL), the baseline comparison and the exit status.
"""
