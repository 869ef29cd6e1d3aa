"""The worker process: ``python -m oracle.worker FD PRELOAD`` — runs Cases, streams Outcomes.

Started by ``oracle.process.SpawnedWorker`` with its environment already set
(``TF_ENABLE_ONEDNN_OPTS`` is read once, when TF is imported), stdout and stderr both
redirected to the worker's own stderr file (so a CHECK-failure line survives the crash for the
parent to read) and one end of a socketpair inherited as file descriptor ``FD``. NumPy-world
workers are usually not started this way but forked by ``oracle.forkserver``'s zygote, which
then runs :func:`serve_loop` in the child; either way they enable ``faulthandler``.

Protocol (``multiprocessing.connection.Connection`` framing; every message is JSON, arrays
travel as raw bytes — the parent never unpickles anything from an untrusted target):

    worker -> parent  {"ready": true, "pid", "info"}                 once, after preloading
    parent -> worker  {"op": "run", "items": [[NAME, case JSON], ...]}   (target per item: one
                      message runs one batch on every target sharing this worker)
                      {"op": "run", "target": NAME, "cases": [case JSON, ...]}  (one target; kept)
    worker -> parent  per item, in order, as soon as it is done:
                      {"kind": "value", "dtype", "shape", "seconds", "rss"} + raw bytes
                      {"kind": "raised", "error_class", "error_bases", "message", "seconds", "rss"}
    parent -> worker  {"op": "load", "target": NAME} -> {"ok": bool, "error"?}
    parent -> worker  {"op": "exit"}

Crashes and time limits are the parent's business: it sees EOF or silence (see oracle.drive).
"""
from __future__ import annotations

import faulthandler
import importlib
import json
import os
import re
import sys
import time
from typing import Any, Callable

import numpy as np

from conv3dt.oracle.case import Case
from conv3dt.oracle.kernels import observe
from conv3dt.oracle.outcome import qualified_name
from conv3dt.oracle.targets import FRAMEWORK_TARGETS, resolve

PAGE = os.sysconf("SC_PAGE_SIZE")


_SELF_STATM: int | None = None


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process (Linux /proc); 0 where unavailable."""
    global _SELF_STATM
    try:
        if pid == "self":  # called after every case: keep the file open (pread ~5 µs)
            if _SELF_STATM is None:
                _SELF_STATM = os.open("/proc/self/statm", os.O_RDONLY)
            return int(os.pread(_SELF_STATM, 128, 0).split()[1]) * PAGE
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


class BadReturn(TypeError):
    """The target returned something that is not a numeric array."""


def _load_callable(name: str) -> Callable[[Case, tuple], np.ndarray]:
    """A function (case, arrays) -> ndarray for one target name."""
    spec = resolve(name)
    if spec.kind == "tf" and spec.gradient:
        from conv3dt.oracle import tf_grad_paths

        return lambda case, arrays: tf_grad_paths.run(spec.path, case, arrays)
    if spec.kind == "tf":
        from conv3dt.oracle import tf_paths

        return _forward_only(name, lambda case, arrays: tf_paths.run(spec.path, case, arrays))
    if spec.kind == "jax":
        from conv3dt.oracle import jax_path

        return _forward_only(name, jax_path.run)
    if spec.kind in FRAMEWORK_TARGETS:
        return _forward_only(name, importlib.import_module(FRAMEWORK_TARGETS[spec.kind][0]).run)
    if spec.kind in ("impl", "impl-grad"):
        fn = getattr(importlib.import_module("conv3dt.impl"),
                     "conv3d_transpose_grads" if spec.gradient else "conv3d_transpose")
    else:
        fn = importlib.import_module(spec.module)
        for part in spec.function.split("."):
            fn = getattr(fn, part)

    if spec.gradient:
        def run(case: Case, arrays: tuple) -> np.ndarray:
            return call_gradient(fn, case, arrays)
    else:
        run = _forward_only(name, lambda case, arrays: call_v1(fn, case, arrays))

    from conv3dt.oracle.capabilities import ATTRIBUTE   # what the callable declares, if anything
    setattr(run, ATTRIBUTE, getattr(fn, ATTRIBUTE, None))
    return run


def _forward_only(name: str, run: Callable[[Case, tuple], np.ndarray]) -> Callable:
    """``run`` refusing gradient Cases: a forward target has no backward to give."""
    def guarded(case: Case, arrays: tuple) -> np.ndarray:
        if case.is_gradient:
            raise TypeError(f"{name} is a forward target: it runs no gradient Case")
        return run(case, arrays)
    return guarded


def call_v1(fn: Callable, case: Case, arrays: tuple) -> np.ndarray:
    """Call a NumPy-world function with TF's v1 signature (tensor forms become arrays).

    NumPy's floating-point warnings (overflow, ``0 * inf``) are silenced: the Outcome holds the
    values, and a fuzz run feeds such inputs on purpose."""
    args, kwargs = case.call_args(tensor=lambda values, dtype: np.asarray(values, dtype=dtype),
                                  arrays=arrays)
    with np.errstate(all="ignore"):
        return fn(*args, **kwargs)


class GradientReturn(TypeError):
    """A backward returned something other than the pair ``(dvalue, dfilter)``."""


def call_gradient(fn: Callable, case: Case, arrays: tuple) -> np.ndarray:
    """Call a backward with ``impl.conv3d_transpose_grads``'s signature (the forward's arguments
    as recorded plus ``grad_output=g``) and return the gradient the Case asks for."""
    if not case.is_gradient:
        raise TypeError("a gradient target runs gradient Cases only (this Case is the forward)")
    args, kwargs = case.call_args(tensor=lambda values, dtype: np.asarray(values, dtype=dtype),
                                  arrays=arrays)
    with np.errstate(all="ignore"):
        result = fn(*args, grad_output=case.grad_array(), **kwargs)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise GradientReturn(f"a backward must return (dvalue, dfilter), got {type(result).__name__}")
    return result[0 if case.grad_wrt == "value" else 1]


class CallOutput:
    """What the worker wrote to its stdout/stderr file (fd 1) during one call: oneDNN's verbose
    lines land there (``oracle.kernels``). Reads only what the call appended."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open("/proc/self/fd/1", os.O_RDONLY)
        except OSError:
            self._fd = None
        self._start = 0

    def size(self) -> int:
        return os.fstat(self._fd).st_size if self._fd is not None else 0

    def mark(self) -> None:
        self._start = self.size()

    def text(self, limit: int = 1 << 20) -> str:
        if self._fd is None:
            return ""
        size = os.fstat(self._fd).st_size
        start = max(self._start, size - limit)
        return os.pread(self._fd, size - start, start).decode("utf-8", "replace") if size > start else ""


def _nonempty_call(case_json: dict) -> bool:
    """Whether value, filter and output_shape of a Case (JSON), and a gradient Case's
    grad_output, all have elements: only then does a kernel have products to compute (oneDNN
    creates no primitive for an empty g, and reports none)."""
    operands = [case_json.get("value"), case_json.get("filter")]
    shapes = [a.get("shape") for a in operands if isinstance(a, dict)] + [case_json.get("output_shape")]
    g = case_json.get("grad_output")
    try:
        if isinstance(g, dict) and int(np.prod([int(d) for d in g.get("shape") or []])) == 0:
            return False
        return len(shapes) == 3 and all(int(np.prod([int(d) for d in s])) > 0 for s in shapes)
    except (TypeError, ValueError):
        return False


def kernel_observer(name: str, facts: dict[str, Any], output: CallOutput | None
                    ) -> Callable[[dict, str], dict]:
    """``(case JSON, error message) -> KernelObservation JSON`` for one target in this worker."""
    try:
        kind, path = resolve(name).kind, resolve(name).path
    except ValueError:  # a name that did not load: its items record the load error
        kind, path = "module", None

    def observe_call(case_json: dict, message: str) -> dict:
        arrays = [case_json.get("filter"), case_json.get("value")]
        dtype = next((a["dtype"] for a in arrays if isinstance(a, dict) and "dtype" in a), None)
        text = (output.text() if output is not None else "") + "\n" + message
        computed = output is not None and not message and _nonempty_call(case_json)
        operation = {None: "forward", "value": "grad-value", "filter": "grad-filter"}.get(
            case_json.get("grad_wrt"), "forward")
        return observe(kind, path, dtype, text, facts, computed, operation).to_json()

    return observe_call


# A graph execution error carries Python tracebacks of where the node was defined: before the
# kernel's text ("Detected at node 'x' defined at (most recent call last): ... Node: 'x'") and
# after it ("Original stack trace for 'x': ..."), ~1.5k characters of the oracle's own call stack,
# longer in a deeper checkout or a tox env.
_NODE_DEFINITION = (re.compile(r"Detected at node .*? defined at \(most recent call last\):\n"
                               r".*?^Node: [^\n]*\n", re.S | re.M),
                    re.compile(r"\n*Original stack trace for .*", re.S))


def error_text(exc: BaseException) -> str:
    """An exception's message without TF's tracebacks of the node definition: what the kernel
    said is what the ledger and the judge read, wherever the checkout lies, whichever TF wrote it."""
    text = str(exc)
    for rx in _NODE_DEFINITION:
        text = rx.sub("", text)
    return text


def run_one(fn: Callable, case_json: dict, kernel_of: Callable[[dict, str], dict] | None = None,
            output: CallOutput | None = None) -> tuple[dict, bytes | None]:
    """Run one case; return the reply header and, for a value, its raw bytes. ``kernel_of``
    (see :func:`kernel_observer`) adds the kernel that ran to the header."""
    if output is not None:
        output.mark()
    start = time.perf_counter()
    try:
        case = Case.from_json(case_json)
        arrays = case.arrays()
        result = fn(case, arrays)
        arr = np.ascontiguousarray(np.asarray(result))
        if arr.dtype.kind not in "fciub" and arr.dtype.name != "bfloat16":
            raise BadReturn(f"target returned {type(result).__name__} of dtype {arr.dtype}")
        header = {"kind": "value", "dtype": arr.dtype.name if arr.dtype.name == "bfloat16"
                  else arr.dtype.str, "shape": list(arr.shape)}
        raw = arr.tobytes()
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a target is behaviour too
        if isinstance(exc, KeyboardInterrupt):
            raise
        header = {"kind": "raised", "error_class": qualified_name(type(exc)),
                  "error_bases": [qualified_name(c) for c in type(exc).__mro__[1:] if c is not object],
                  "message": error_text(exc)[:4000]}
        raw = None
    header["seconds"] = time.perf_counter() - start
    header["rss"] = rss_bytes()
    if kernel_of is not None:
        header["kernel"] = kernel_of(case_json, header.get("message") or "")
    if output is not None:   # where the next call's output starts (the parent cannot know:
        header["output_end"] = output.size()   # the worker is already running it)
    return header, raw


def preload_info(preload: str) -> dict[str, Any]:
    """Import what a worker of this kind needs before its first call; return its facts."""
    return {**import_info(preload), **runtime_info(preload)}


def import_info(preload: str) -> dict[str, Any]:
    """The imports and facts that start no thread: all a fork server's zygote does before it
    forks workers (``oracle.forkserver``); each forked worker then adds ``runtime_info``."""
    info: dict[str, Any] = {"python": sys.version.split()[0], "numpy": np.__version__,
                            "pid": os.getpid(), "preload": preload}
    if preload == "tf":
        from conv3dt.oracle import tf_paths

        info.update(tf_paths.import_facts())
    return info


def runtime_info(preload: str) -> dict[str, Any]:
    """The facts that need the runtime running (TF: whether XLA compiles and runs here; jax:
    its import and first call, which start its thread pools — so jax is never forked)."""
    if preload == "tf":
        from conv3dt.oracle import tf_paths

        return tf_paths.runtime_facts()
    if preload == "jax":
        from conv3dt.oracle import jax_path

        return jax_path.warm_up()
    if preload in FRAMEWORK_TARGETS:   # onnxruntime / openvino start thread pools: spawned, like jax
        return importlib.import_module(FRAMEWORK_TARGETS[preload][0]).warm_up()
    return {}


def serve(conn, preload: str) -> None:
    info = preload_info(preload)
    conn.send_bytes(json.dumps({"ready": True, "pid": os.getpid(), "info": info}).encode())
    serve_loop(conn, info, {})


def load_target(callables: dict[str, Callable], name: str) -> dict[str, Any]:
    """Load target ``name`` into ``callables``; the ``load`` reply (``ok``, or the error)."""
    try:
        callables[name] = _load_callable(name)
        return {"ok": True}
    except BaseException as exc:  # noqa: BLE001 — a target's import may raise anything
        return {"ok": False, "error": f"{qualified_name(type(exc))}: {exc}"}


def declared_capabilities(callables: dict[str, Callable], name: str) -> dict[str, Any]:
    """The loaded target's ``conv3dt_capabilities`` attribute (``oracle.capabilities``), as
    ``{"declared": mapping | None}``, or ``{"error": ...}`` when it cannot be sent as JSON."""
    from conv3dt.oracle.capabilities import ATTRIBUTE

    fn = callables.get(name)
    if fn is None:
        load_target(callables, name)
        fn = callables.get(name)
    declared = getattr(fn, ATTRIBUTE, None)
    try:
        json.dumps(declared)
    except (TypeError, ValueError) as exc:
        return {"error": f"{ATTRIBUTE} is not a JSON-style mapping: {exc}"}
    return {"declared": declared}


def serve_loop(conn, info: dict[str, Any], callables: dict[str, Callable]) -> None:
    """Answer ``load`` / ``declared`` / ``run`` / ``exit`` until told to exit or the parent goes away.
    ``callables``: targets loaded already (a forked worker inherits its zygote's)."""
    observers: dict[str, Callable] = {}
    output = CallOutput()
    while True:
        try:
            msg = json.loads(conn.recv_bytes())
        except EOFError:
            return
        op = msg.get("op")
        if op == "exit":
            return
        if op == "load":
            conn.send_bytes(json.dumps(load_target(callables, msg["target"])).encode())
            continue
        if op == "declared":
            conn.send_bytes(json.dumps(declared_capabilities(callables, msg["target"])).encode())
            continue
        if op == "run":
            items = msg["items"] if "items" in msg else [[msg["target"], c] for c in msg["cases"]]
            for name, case_json in items:
                fn = callables.get(name)
                if fn is None:
                    try:
                        fn = callables[name] = _load_callable(name)
                    except BaseException as exc:  # noqa: BLE001 - the item records the load error
                        fn = lambda case, arrays, _e=exc: (_ for _ in ()).throw(_e)  # noqa: E731
                if name not in observers:
                    observers[name] = kernel_observer(name, info, output)
                header, raw = run_one(fn, case_json, observers[name], output)
                conn.send_bytes(json.dumps(header).encode())
                if raw is not None:
                    conn.send_bytes(raw)
            continue
        raise SystemExit(f"oracle.worker: unknown op {op!r}")


def main(argv: list[str] | None = None) -> int:
    from multiprocessing.connection import Connection

    argv = sys.argv[1:] if argv is None else argv
    fd, preload = int(argv[0]), argv[1]
    # Anything a target prints to stdout goes to the stderr file, never into the protocol.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if preload == "none":  # a NumPy-world target's fatal signal leaves its Python stack
        faulthandler.enable()
    serve(Connection(fd), preload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
