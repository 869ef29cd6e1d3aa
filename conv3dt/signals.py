"""Stop signals handled like Ctrl-C, so an ended run still leaves a valid partial record.

CI systems end an over-long job with SIGTERM (``timeout``, GitHub Actions and GitLab on cancel,
``kill``); a closed terminal or ssh session sends SIGHUP. Python's default for both is to die on
the spot, so before this a gate ended that way left no report at all. ``install()`` makes
SIGTERM and SIGHUP raise ``Interrupted`` (a ``KeyboardInterrupt``, so every Ctrl-C path handles
them) and restores Python's Ctrl-C handler where SIGINT was inherited as ignored (a parent such
as a pytest-xdist worker); ``exit_code`` is the shell convention 128 + the signal number (130
Ctrl-C, 143 SIGTERM, 129 SIGHUP).
"""
from __future__ import annotations

import signal

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class Interrupted(KeyboardInterrupt):
    """A stop signal other than Ctrl-C, raised where the program was (``signal_name``)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def _raise(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def install() -> None:
    """SIGTERM and SIGHUP raise ``Interrupted``; SIGINT raises KeyboardInterrupt even when it
    was inherited as ignored. Main thread only (Python's rule for signal handlers)."""
    try:
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        for name in ("SIGTERM", "SIGHUP"):
            signal.signal(getattr(signal, name), _raise)
    except ValueError:      # not the main thread (the CLI called from a thread): leave as is
        pass


def reason_of(exc: BaseException) -> str:
    """The stop signal's name behind a KeyboardInterrupt (plain Ctrl-C: 'SIGINT')."""
    return getattr(exc, "signal_name", "SIGINT")


def exit_code(reason: str) -> int:
    """128 + the signal's number for a stop signal's name; 130 otherwise."""
    try:
        return 128 + int(signal.Signals[reason])
    except KeyError:
        return 130
