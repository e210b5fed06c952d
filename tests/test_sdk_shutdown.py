"""The flushing signal handler goes only where the default disposition would kill the process.

The end-to-end proof (a burst, SIGTERM, all of it at the processor, the same exit
status) is in ``test_zero_code_apps.py``; these check what is installed where.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import faultlens
import pytest
from faultlens import _shutdown as shutdown


@pytest.fixture
def default_sigterm() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        shutdown.uninstall_signal_flush()
        signal.signal(signal.SIGTERM, previous)


def test_installed_over_the_default_and_removed_again(default_sigterm: None) -> None:
    assert faultlens.install_signal_flush() is True
    assert shutdown.signal_flush_installed()
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    faultlens.uninstall_signal_flush()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_handler_of_the_program_is_left_alone(default_sigterm: None) -> None:
    def own(signum: int, frame: object) -> None:
        pass

    signal.signal(signal.SIGTERM, own)
    faultlens.install_signal_flush()
    assert signal.getsignal(signal.SIGTERM) is own
    faultlens.uninstall_signal_flush()
    assert signal.getsignal(signal.SIGTERM) is own


def test_replaced_after_installing_it_stays_replaced(default_sigterm: None) -> None:
    faultlens.install_signal_flush()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    faultlens.uninstall_signal_flush()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
