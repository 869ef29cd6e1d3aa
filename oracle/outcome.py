"""Outcome: what one target did with one Case.

Exactly one of four kinds, so that nothing a target does is ever lost:

- ``value``    it returned an array (kept as a NumPy array: dtype and shape as returned);
- ``raised``   it raised: the exception's qualified class name, its base classes (so the
               judge can ask "is this a ValueError?" without importing TensorFlow) and message;
- ``crashed``  the worker process died: the signal (SIGABRT for a CHECK failure, SIGSEGV,
               SIGFPE, SIGKILL for an OOM kill) or exit code, and the tail of its stderr;
- ``timeout``  it ran past the time limit and its worker was replaced.

Every Outcome of the oracle also says which kernel ran the call (``kernel``, an
``oracle.kernels.KernelObservation``): observed per call, so that a judged deviation belongs to
the kernel that produced it, not to a target's name.
"""
from __future__ import annotations

import re
import signal as _signal
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from conv3dt.oracle.kernels import KernelObservation

OutcomeKind = Literal["value", "raised", "crashed", "timeout"]

_FATAL_LINE = re.compile(r"^F\d{4} ")  # glog/absl FATAL prefix, e.g. "F0000 00:00:17... file.cc:610]"
_PY_FATAL = "Fatal Python error: "      # faulthandler's first line (NumPy-world workers enable it)


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    value: np.ndarray | None = None
    error_class: str | None = None
    error_bases: tuple[str, ...] = ()
    message: str | None = None
    signal: int | None = None
    exit_code: int | None = None
    stderr_tail: str = ""
    seconds: float = 0.0
    kernel: KernelObservation | None = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def of_value(cls, array: Any, seconds: float = 0.0) -> "Outcome":
        return cls(kind="value", value=np.asarray(array), seconds=seconds)

    @classmethod
    def of_exception(cls, exc: BaseException, seconds: float = 0.0) -> "Outcome":
        bases = tuple(qualified_name(c) for c in type(exc).__mro__[1:] if c is not object)
        return cls(kind="raised", error_class=qualified_name(type(exc)), error_bases=bases,
                   message=str(exc)[:4000], seconds=seconds)

    @classmethod
    def of_crash(cls, *, signal: int | None = None, exit_code: int | None = None,
                 stderr_tail: str = "", seconds: float = 0.0) -> "Outcome":
        return cls(kind="crashed", signal=signal, exit_code=exit_code,
                   stderr_tail=stderr_tail[-4000:], seconds=seconds)

    @classmethod
    def of_timeout(cls, seconds: float, stderr_tail: str = "") -> "Outcome":
        return cls(kind="timeout", seconds=seconds, stderr_tail=stderr_tail[-4000:])

    # ------------------------------------------------------------------ questions
    @property
    def short_class(self) -> str | None:
        return None if self.error_class is None else self.error_class.rsplit(".", 1)[-1]

    def is_instance_of(self, name: str) -> bool:
        """True when the raised class is, or derives from, a class of this (short or full) name."""
        names = (self.error_class, *self.error_bases) if self.error_class else ()
        return any(n == name or n.rsplit(".", 1)[-1] == name for n in names)

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        try:
            return _signal.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"

    @property
    def fatal_line(self) -> str | None:
        """The stderr line that best explains a crash: the last FATAL / CHECK-failure line
        (glog ``F....`` or ``Check failed``); else Python's ``faulthandler`` report ("Fatal Python
        error: Segmentation fault") with the innermost frame it dumped; else the last non-empty
        line."""
        lines = [ln.strip() for ln in self.stderr_tail.splitlines() if ln.strip()]
        for ln in reversed(lines):
            if _FATAL_LINE.match(ln) or "Check failed" in ln:
                return ln
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].startswith(_PY_FATAL):
                frame = next((ln for ln in lines[i + 1:] if ln.startswith("File ")), None)
                return lines[i] + (f" ({frame})" if frame else "")
        return lines[-1] if lines else None

    def describe(self) -> str:
        """One line for reports and messages."""
        if self.kind == "value":
            return f"value dtype={self.value.dtype} shape={tuple(self.value.shape)}"
        if self.kind == "raised":
            first = (self.message or "").strip().splitlines()[:1]
            return f"raised {self.short_class}: {first[0][:300] if first else ''}"
        if self.kind == "crashed":
            cause = self.signal_name or f"exit code {self.exit_code}"
            line = self.fatal_line
            return f"crashed ({cause})" + (f": {line[:300]}" if line else "")
        return f"timed out after {self.seconds:.1f}s"

    def to_json(self) -> dict[str, Any]:
        """JSON form for run records (array values are summarised, not stored)."""
        out: dict[str, Any] = {"kind": self.kind, "seconds": round(self.seconds, 6)}
        if self.kind == "value":
            out.update(dtype=str(self.value.dtype), shape=list(self.value.shape))
        elif self.kind == "raised":
            out.update(error_class=self.error_class, error_bases=list(self.error_bases),
                       message=self.message)
        elif self.kind == "crashed":
            out.update(signal=self.signal, signal_name=self.signal_name,
                       exit_code=self.exit_code, stderr_tail=self.stderr_tail)
        else:
            out.update(stderr_tail=self.stderr_tail)
        if self.kernel is not None:
            out["kernel"] = self.kernel.to_json()
        return out

    def with_kernel(self, kernel: KernelObservation | None) -> "Outcome":
        return replace(self, kernel=kernel)
