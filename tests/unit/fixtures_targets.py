"""Misbehaving ``module:function`` targets (TF v1 signature) for the oracle's isolation tests.

Each one does on purpose what a broken kernel might do. The ``case`` argument conventions:
``fine`` returns a zero array of ``output_shape``; the others ignore their arguments.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

import numpy as np

_HOARD: list[bytes] = []


def _value(kwargs, args):
    return kwargs.get("value", args[0] if args else None)


def fine(*args, **kwargs):
    """A well-behaved target: zeros of output_shape in the input's dtype."""
    return np.zeros(tuple(kwargs["output_shape"]), dtype=np.asarray(_value(kwargs, args)).dtype)


def rejecting(*args, **kwargs):
    raise ValueError("rejecting: this target rejects every call")


def abort(*args, **kwargs):
    sys.stderr.write("F0000 fixtures_targets.py:1] Check failed: deliberate abort\n")
    sys.stderr.flush()
    os.abort()


def segfault(*args, **kwargs):
    return ctypes.string_at(0)


def fpe(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGFPE)
    time.sleep(5)


def exit3(*args, **kwargs):
    os._exit(3)


def hang(*args, **kwargs):
    while True:
        time.sleep(0.05)


def leak(*args, **kwargs):
    """Keeps 64 MiB (touched) per call; returns normally."""
    _HOARD.append(np.ones(64 * 2**20, dtype=np.uint8))
    return fine(*args, **kwargs)


def hog(*args, **kwargs):
    """Grows without bound inside one call (until the oracle kills it)."""
    while True:
        _HOARD.append(np.ones(32 * 2**20, dtype=np.uint8))
        time.sleep(0.01)


def by_value(*args, **kwargs):
    """Behaviour chosen by the first element of value: 0 fine, 1 abort, 2 segfault, 3 hang, 4 raise."""
    first = float(np.asarray(_value(kwargs, args)).ravel()[0])
    return {0.0: fine, 1.0: abort, 2.0: segfault, 3.0: hang, 4.0: rejecting}[first](*args, **kwargs)


def sleeps(*args, **kwargs):
    """Sleeps value[0] seconds, then returns like ``fine``; a negative value[0] hangs."""
    first = float(np.asarray(_value(kwargs, args)).ravel()[0])
    if first < 0:
        hang()
    time.sleep(first)
    return fine(*args, **kwargs)


def abort_tagged(*args, **kwargs):
    """value[0] == 1: writes a CHECK line naming value[1] (the call's tag), then aborts;
    else writes a noise line naming the tag and returns like ``fine``."""
    flat = np.asarray(_value(kwargs, args)).ravel()
    tag = int(flat[1])
    if float(flat[0]) == 1.0:
        sys.stderr.write(f"F0000 fixtures_targets.py:2] Check failed: call {tag} aborts\n")
        sys.stderr.flush()
        os.abort()
    sys.stderr.write(f"call {tag} is fine\n")
    sys.stderr.flush()
    return fine(*args, **kwargs)


def prints(*args, **kwargs):
    """Writes to stdout (must not corrupt the worker protocol)."""
    print("noise on stdout " * 100)
    return fine(*args, **kwargs)


def returns_object(*args, **kwargs):
    """Returns something that is not an array."""
    return {"not": "an array"}

