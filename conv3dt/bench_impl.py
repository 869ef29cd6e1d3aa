"""Benchmark: impl.conv3d_transpose vs TensorFlow's conv3d_transpose, float32, NDHWC.

Both run side by side in one process, interleaved (impl, TF, impl, TF, ...), median of repeats.
Both take NumPy arrays and return NumPy arrays (TF's time includes its conversions: this is what a
NumPy user pays). TF runs, per shape, on the first of its paths that accepts the call: ``eager``
(``tf.compat.v1.nn.conv3d_transpose``), then ``function`` (``tf.function``, graph mode), then
``xla`` (``tf.function(jit_compile=True)``). Each is tried with one call on the shape's arrays; a
path that raises a TF error (``tf.errors.OpError``) is passed over. Which paths accept depends on
the build and the CPU: TF's stock CPU kernel rejects dilation > 1 ("Current CPU implementation
does not yet support dilation rates larger than 1", eager and tf.function alike), so with oneDNN
off dilated shapes run under XLA; with oneDNN on (``TF_ENABLE_ONEDNN_OPTS=1``, TF's default on
CPUs with AVX-512 VNNI/BF16 or AMX) eager accepts them, 30-100x faster than XLA. The ``tf`` column
names the path each shape's ratio is against; below the table each passed-over path is listed
with its error. Memory: peak bytes traced by tracemalloc during one impl call (NumPy reports its
buffers; the output itself is included) divided by the output's bytes. Correctness: both results
must lie within ``u*|y| + gamma_n * (|value| (*) |filter|)`` of a float64 result.

BLAS threads: on a shared, oversubscribed machine OpenBLAS's threaded GEMM can be 100x slower
than single-threaded (its threads spin-wait for cores other processes hold). ``--blas-threads N``
re-runs the benchmark in a child process with ``OPENBLAS_NUM_THREADS=N`` (and the OMP/MKL
equivalents; they are read once, at NumPy import, so they cannot be changed in-process). TF's own
thread pools are left at their defaults either way.

Usage: ``python -m conv3dt.bench_impl [--repeats N] [--quick] [--blas-threads N]`` or
``conv3dt bench impl ...``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from typing import Callable

import numpy as np

from conv3dt import impl
from conv3dt.impl.kernel import transposed_conv_ndhwc

# (label, batch, input spatial, Cin, Cout, kernel, stride, dilation, padding)
SHAPES = [
    ("unet-up k2s2 8^3 64->32", 1, 8, 64, 32, 2, 2, 1, "SAME"),
    ("unet-up k2s2 16^3 32->16 n2", 2, 16, 32, 16, 2, 2, 1, "SAME"),
    ("unet-up k3s2 16^3 64->32", 1, 16, 64, 32, 3, 2, 1, "SAME"),
    ("decoder k2s2 8^3 128->64 n4 valid", 4, 8, 128, 64, 2, 2, 1, "VALID"),
    ("decoder k4s2 4^3 128->64 n8", 8, 4, 128, 64, 4, 2, 1, "SAME"),
    ("decoder k4s2 8^3 32->16 valid", 1, 8, 32, 16, 4, 2, 1, "VALID"),
    ("refine k3s1 32^3 16->8", 1, 32, 16, 8, 3, 1, 1, "SAME"),
    ("refine k3s1 16^3 32->32 n2", 2, 16, 32, 32, 3, 1, 1, "SAME"),
    ("refine k3s1 8^3 64->64 n2 valid", 2, 8, 64, 64, 3, 1, 1, "VALID"),
    ("decoder k3s2 8^3 64->32 n4 valid", 4, 8, 64, 32, 3, 2, 1, "VALID"),
    ("dilated k3s1d2 16^3 16->16", 1, 16, 16, 16, 3, 1, 2, "SAME"),
    ("dilated k2s2d2 8^3 32->16 n2", 2, 8, 32, 16, 2, 2, 2, "SAME"),
]
TINY = ("tiny 1x2x2x2x1 k2s1", 1, 2, 1, 1, 2, 1, 1, "SAME")
QUICK = [0, 3, 6, 10]
GOALS = dict(median_ratio=1.0, worst_ratio=2.0, tiny_speedup=10.0, memory_ratio=2.0)


def _output_size(size, kernel, stride, dilation, padding):
    if padding == "SAME":
        return size * stride
    return (size - 1) * stride + (kernel - 1) * dilation + 1


def make_case(shape, rng):
    """Arrays and keyword arguments for one benchmark shape."""
    _, batch, size, cin, cout, kernel, stride, dilation, padding = shape
    out = _output_size(size, kernel, stride, dilation, padding)
    value = rng.standard_normal((batch, size, size, size, cin), dtype=np.float32)
    filter = rng.standard_normal((kernel, kernel, kernel, cout, cin), dtype=np.float32)
    return dict(value=value, filter=filter, output_shape=[batch, out, out, out, cout],
                strides=stride, padding=padding, dilations=dilation)


#: TF's paths in the order they are tried: the first that accepts a shape's call is timed.
TF_PATHS = ("eager", "function", "xla")


@dataclass(frozen=True)
class TfPath:
    """One way of running TF on a case: ``call()`` returns the result as a NumPy array."""
    name: str
    call: Callable[[], np.ndarray]


@dataclass(frozen=True)
class Rejection:
    """A path passed over: its name and the error its trial call raised (``error_summary``)."""
    path: str
    error: str


def error_summary(exc: BaseException) -> str:
    """``Type: message`` in one line: TF's ``{{node ...}}``, ``[[...]]`` and ``[Op:...]`` markers
    dropped, then the message's last non-empty line (a graph error ends with the kernel's text,
    after the Python frames that defined the node), cut to 200 characters."""
    text = re.sub(r"\{\{[^}]*\}\}|\[\[.*?\]\]|\[Op:[^\]]*\]", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {(lines[-1] if lines else '')[:200]}"


@dataclass(frozen=True)
class TfChoice:
    """The path chosen for a shape, the result of its trial call, and the paths passed over."""
    path: TfPath
    result: np.ndarray
    rejected: tuple[Rejection, ...]


class NoTfPathError(RuntimeError):
    """No TF path accepted a benchmark shape's call."""


def choose_tf_path(paths: list[TfPath], rejects: tuple[type[BaseException], ...]) -> TfChoice:
    """Call each path once, in order, and return the first that does not raise one of
    ``rejects`` (with its result). Other exceptions propagate; when every path raises one of
    ``rejects``, raises :class:`NoTfPathError` naming each path and its error."""
    rejected: list[Rejection] = []
    for path in paths:
        try:
            result = path.call()
        except rejects as exc:
            rejected.append(Rejection(path.name, error_summary(exc)))
            continue
        return TfChoice(path, result, tuple(rejected))
    raise NoTfPathError("no TF path accepts the call: "
                        + "; ".join(f"{r.path}: {r.error}" for r in rejected))


def tf_paths(tf, kwargs) -> list[TfPath]:
    """TF's paths (``TF_PATHS``, in that order) for one case, each a zero-argument callable
    returning NumPy. The tf.function paths take the arrays as arguments (the rest is static), so
    a call after the first reuses the traced (and, for XLA, compiled) function."""
    static = {k: v for k, v in kwargs.items() if k not in ("value", "filter")}

    def conv(value, filter):
        return tf.compat.v1.nn.conv3d_transpose(value, filter, **static)

    graph, compiled = tf.function(conv), tf.function(jit_compile=True)(conv)
    value, filter = kwargs["value"], kwargs["filter"]
    calls = {"eager": lambda: tf.compat.v1.nn.conv3d_transpose(**kwargs).numpy(),
             "function": lambda: graph(value, filter).numpy(),
             "xla": lambda: compiled(value, filter).numpy()}
    return [TfPath(name, calls[name]) for name in TF_PATHS]


def tf_runner(tf, kwargs) -> TfChoice:
    """The first of TF's paths (eager, tf.function, XLA) that accepts the case's call, found by
    calling each in turn; a TF error (``tf.errors.OpError``) passes a path over."""
    return choose_tf_path(tf_paths(tf, kwargs), (tf.errors.OpError,))


def _time_per_call(function, min_seconds):
    """Seconds per call, timing a loop long enough to be measurable."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            function()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or calls >= 1 << 16:
            return elapsed / calls
        calls *= 4 if elapsed < min_seconds / 8 else 2


def peak_memory_ratio(kwargs):
    """Peak traced bytes during one impl call / output bytes."""
    out_bytes = int(np.prod(kwargs["output_shape"])) * 4
    tracemalloc.start()
    tracemalloc.reset_peak()
    impl.conv3d_transpose(**kwargs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / max(out_bytes, 1)


def within_bound(kwargs, *results):
    """Every result within the float32 error bound of a float64 evaluation."""
    value64 = kwargs["value"].astype(np.float64)
    filter64 = kwargs["filter"].astype(np.float64)
    call = impl.normalize_call(**kwargs)
    geometry = (call.output_spatial, call.strides, call.dilations, call.pad_before, np.float64)
    truth = transposed_conv_ndhwc(value64, filter64, *geometry)
    magnitude = transposed_conv_ndhwc(np.abs(value64), np.abs(filter64), *geometry)
    n_terms = int(np.prod(kwargs["filter"].shape[:3])) * kwargs["filter"].shape[4]
    unit = 2.0 ** -24
    gamma = n_terms * unit / (1 - n_terms * unit)
    # the float64 evaluation's own error (gamma_n at 2**-53) is added to be rigorous
    bound = unit * np.abs(truth) + (gamma + 2 * n_terms * 2.0 ** -53) * magnitude
    return all(bool(np.all(np.abs(r.astype(np.float64) - truth) <= bound)) for r in results)


def run_shape(tf, shape, repeats, rng, min_seconds):
    """Time impl and TF's chosen path (``tf_runner``) on one shape, interleaved; check both
    results against the error bound. Returns the row printed (``path``: the TF path timed,
    ``rejected``: the paths passed over)."""
    kwargs = make_case(shape, rng)
    _, batch, size, cin, cout, kernel, stride, dilation, padding = shape
    choice = tf_runner(tf, kwargs)
    tf_call = choice.path.call
    ours = impl.conv3d_transpose(**kwargs)
    ok = within_bound(kwargs, ours, choice.result)

    def impl_call():
        return impl.conv3d_transpose(**kwargs)

    impl_times, tf_times = [], []
    for _ in range(repeats):
        impl_times.append(_time_per_call(impl_call, min_seconds))
        tf_times.append(_time_per_call(tf_call, min_seconds))
    t_impl, t_tf = statistics.median(impl_times), statistics.median(tf_times)
    flops = 2.0 * batch * size ** 3 * cin * cout * kernel ** 3
    return dict(label=shape[0], path=choice.path.name, rejected=choice.rejected,
                t_impl=t_impl, t_tf=t_tf, ratio=t_impl / t_tf,
                gflops_impl=flops / t_impl / 1e9, gflops_tf=flops / t_tf / 1e9,
                memory=peak_memory_ratio(kwargs), ok=ok)


def onednn_state() -> str:
    """Whether TF's oneDNN kernels are on, as TF decided (CPU features, then
    ``TF_ENABLE_ONEDNN_OPTS``): "on", "off", or "unknown" when TF's private query is missing."""
    try:
        from tensorflow.python.util import _pywrap_util_port as port

        return "on" if port.IsMklEnabled() else "off"
    except Exception:  # noqa: BLE001 - private API
        return "unknown"


def _fmt_time(seconds):
    return f"{seconds * 1e3:9.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:9.1f} us"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conv3dt bench impl", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per shape (median)")
    parser.add_argument("--quick", action="store_true", help="4 shapes, 3 repeats, short loops")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="run with OPENBLAS/OMP/MKL_NUM_THREADS=N (in a child process)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.blas_threads is not None:
        if args.blas_threads < 1:
            parser.error("--blas-threads must be >= 1")
        threads = str(args.blas_threads)
        if os.environ.get("OPENBLAS_NUM_THREADS") != threads:
            env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads,
                       MKL_NUM_THREADS=threads)
            child = [sys.executable, "-m", "conv3dt.bench_impl", "--repeats", str(args.repeats),
                     "--blas-threads", threads] + (["--quick"] if args.quick else [])
            return subprocess.call(child, env=env)
    repeats = min(args.repeats, 3) if args.quick else args.repeats
    min_seconds = 0.02 if args.quick else 0.1
    shapes = [SHAPES[i] for i in QUICK] if args.quick else SHAPES
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    rng = np.random.default_rng(0)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")
    print(f"impl vs TF {tf.__version__} conv3d_transpose, float32 NDHWC, median of {repeats}, "
          f"OPENBLAS_NUM_THREADS={blas}, TF oneDNN {onednn_state()} "
          f"(TF_ENABLE_ONEDNN_OPTS={onednn}), load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    print(f"tf = the TF path timed: the first of {', '.join(TF_PATHS)} that accepts the shape's call")
    header = (f"{'shape':36s} {'tf':8s} {'impl':>12s} {'TF':>12s} {'ratio':>6s} "
              f"{'GF/s impl':>9s} {'GF/s TF':>8s} {'mem/out':>7s} bound")
    print(header)
    rows = []
    for shape in shapes + [TINY]:
        try:
            row = run_shape(tf, shape, repeats, rng, min_seconds)
        except NoTfPathError as exc:
            print(f"conv3dt bench impl: {shape[0]}: {exc}", file=sys.stderr)
            return 3
        rows.append(row)
        print(f"{row['label']:36s} {row['path']:8s} {_fmt_time(row['t_impl'])} "
              f"{_fmt_time(row['t_tf'])} {row['ratio']:6.2f} {row['gflops_impl']:9.1f} "
              f"{row['gflops_tf']:8.1f} {row['memory']:7.2f} {'ok' if row['ok'] else 'FAIL'}",
              flush=True)
    counts = {p: sum(r["path"] == p for r in rows) for p in TF_PATHS}
    print("TF paths timed: " + ", ".join(f"{p} {n}" for p, n in counts.items() if n))
    for row in rows:
        for rejection in row["rejected"]:
            print(f"{row['label']}: {rejection.path} passed over ({rejection.error})")
    realistic, tiny = rows[:-1], rows[-1]
    ratios = [r["ratio"] for r in realistic]
    summary = dict(median_ratio=statistics.median(ratios), worst_ratio=max(ratios),
                   tiny_speedup=tiny["t_tf"] / tiny["t_impl"],
                   memory_ratio=max(r["memory"] for r in realistic))
    met = dict(median_ratio=summary["median_ratio"] <= GOALS["median_ratio"],
               worst_ratio=summary["worst_ratio"] <= GOALS["worst_ratio"],
               tiny_speedup=summary["tiny_speedup"] >= GOALS["tiny_speedup"],
               memory_ratio=summary["memory_ratio"] <= GOALS["memory_ratio"])
    print(f"median ratio impl/TF: {summary['median_ratio']:.2f} "
          f"(goal <= {GOALS['median_ratio']}: {'met' if met['median_ratio'] else 'NOT met'})")
    print(f"worst ratio impl/TF:  {summary['worst_ratio']:.2f} "
          f"(goal <= {GOALS['worst_ratio']}: {'met' if met['worst_ratio'] else 'NOT met'})")
    print(f"tiny-shape speedup:   {summary['tiny_speedup']:.1f}x "
          f"(goal >= {GOALS['tiny_speedup']}x: {'met' if met['tiny_speedup'] else 'NOT met'})")
    print(f"worst peak memory / output bytes (realistic shapes): {summary['memory_ratio']:.2f} "
          f"(goal <= {GOALS['memory_ratio']}: {'met' if met['memory_ratio'] else 'NOT met'}; "
          f"tiny shape: {tiny['memory']:.0f}, dominated by array headers)")
    all_ok = all(r["ok"] for r in rows)
    print(f"results within the error bound: {'all' if all_ok else 'NOT all'}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
