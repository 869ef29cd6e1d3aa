"""Benchmark: impl.conv3d_transpose vs TensorFlow's fastest CPU path, float32, NDHWC.

Everything is timed side by side in one process, interleaved per repeat (impl, every TF path that
accepts the shape, the SGEMM roofline; medians over repeats; each sample a loop of at least
``min_seconds``, so a 20 µs call is looped thousands of times). Both take and return NumPy arrays
(TF's time includes its conversions: what a NumPy user pays).

**TF's fastest accepting path.** Per shape every TF path (``eager`` =
``tf.compat.v1.nn.conv3d_transpose`` as shipped, ``function`` = ``tf.function``, ``xla`` =
``tf.function(jit_compile=True)``) is tried with one call; those that raise a TF error are passed
over (listed below the table with the error), the others are all timed and the ratio is against
the *fastest* of them by median (the ``tf`` column names it). Which kernel family eager runs —
oneDNN or TF's stock kernel — is TF's decision from the CPU (oneDNN by default on AVX-512
VNNI/BF16/AMX CPUs) and ``TF_ENABLE_ONEDNN_OPTS``; the header prints it and the CPU's flags.

**BLAS settings.** By default two runs, each in its own child process: ``default`` (the
environment as the user has it: impl's own per-call BLAS policy, ``impl.threads``) and ``1``
(``OPENBLAS_NUM_THREADS=1`` and the OMP/MKL equivalents, read once at NumPy import).
``--blas-threads default|N`` (repeatable) picks the runs. TF's thread pools stay at their defaults.

**Roofline.** Per repeat the same process times one 1024³ float32 SGEMM with the BLAS at its
default threads and with one thread (threadpoolctl); the faster is the practical roofline (GF/s),
and ``roof`` is impl's GF/s as a fraction of it. GF/s count ``2·N·I·Cin·Cout·K³`` (every
input-tap product, as TF's kernels compute them).

**Contention** (``--contended``): a busy loop of our own pinned to the last CPU is resumed while
impl is timed a second time in each repeat and paused otherwise; ``busy×`` is impl's median time
with the loop running over its median time without (goal ≤ 2).

Lower bounds (``bench_ceiling``): ``floor`` is the ratio at the SGEMM roofline, ``gemm`` the
ratio of the faster formulation's GEMMs alone (``p`` phase, ``s`` stationary), both against the
fastest TF path's median; the GEMM times are the fastest of three loops (favouring impl).

Memory: peak bytes traced by tracemalloc during one impl call (NumPy reports its buffers; the
output itself is included) divided by the output's bytes. Correctness: every result (impl and
each accepting TF path) must lie within ``u*|y| + gamma_n * (|value| (*) |filter|)`` of a float64
result.

Usage: ``python -m conv3dt.bench_impl [--repeats N] [--quick] [--blas-threads default|N]
[--contended]`` or ``conv3dt bench impl ...``.
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
from conv3dt.bench_ceiling import ceiling
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
GOALS = dict(median_ratio=0.7, worst_ratio=1.5, tiny_speedup=10.0, memory_ratio=2.0,
             roofline=0.5, contended=2.0)
LARGEST = 3   # the roofline goal holds on this many shapes with the most GF


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


class NoTfPathError(RuntimeError):
    """No TF path accepted a benchmark shape's call."""


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


def accepting_tf_paths(paths: list[TfPath], rejects: tuple[type[BaseException], ...]):
    """Call every path once: ``([(path, result), ...] accepted, (Rejection, ...))``. Errors
    outside ``rejects`` propagate; when every path rejects, raises :class:`NoTfPathError`."""
    accepted, rejected = [], []
    for path in paths:
        try:
            accepted.append((path, path.call()))
        except rejects as exc:
            rejected.append(Rejection(path.name, error_summary(exc)))
    if not accepted:
        raise NoTfPathError("no TF path accepts the call: "
                            + "; ".join(f"{r.path}: {r.error}" for r in rejected))
    return accepted, tuple(rejected)


def flops_of(shape) -> float:
    """``2·N·I³·Cin·Cout·K³``: every input-tap product of a cubic benchmark shape."""
    _, batch, size, cin, cout, kernel, *_ = shape
    return 2.0 * batch * size ** 3 * cin * cout * kernel ** 3


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


def run_shape(tf, shape, repeats, rng, min_seconds, busy=None):
    """Time impl, every accepting TF path (``tf_paths``) and the SGEMM roofline on one shape,
    interleaved; check every result against the error bound. With ``busy`` (a
    ``bench_machine.BusyCore``) impl is timed once more per repeat with the other core saturated.
    Returns the row printed (``path``: the fastest TF path, ``rejected``: the paths passed over)."""
    from conv3dt.bench_machine import SGEMM_FLOPS, sgemm_seconds

    kwargs = make_case(shape, rng)
    accepted, rejected = accepting_tf_paths(tf_paths(tf, kwargs), (tf.errors.OpError,))
    ours = impl.conv3d_transpose(**kwargs)
    ok = within_bound(kwargs, ours, *(result for _, result in accepted))

    def impl_call():
        return impl.conv3d_transpose(**kwargs)

    times: dict[str, list[float]] = {"impl": [], "busy": [], "sgemm": []}
    times.update({path.name: [] for path, _ in accepted})
    for _ in range(repeats):
        times["impl"].append(_time_per_call(impl_call, min_seconds))
        if busy is not None:   # right after the quiet timing: before TF's and OpenBLAS's threads,
            busy.busy(True)    # which spin for a while after their calls, are woken
            try:
                times["busy"].append(_time_per_call(impl_call, min_seconds))
            finally:
                busy.busy(False)
        for path, _ in accepted:
            times[path.name].append(_time_per_call(path.call, min_seconds))
        times["sgemm"].append(min(sgemm_seconds(None), sgemm_seconds(1)))
    medians = {name: statistics.median(ts) for name, ts in times.items() if ts}
    fastest = min((path.name for path, _ in accepted), key=medians.__getitem__)
    t_impl, t_tf, flops = medians["impl"], medians[fastest], flops_of(shape)
    roof = SGEMM_FLOPS / medians["sgemm"] / 1e9
    bounds = ceiling(kwargs, flops, roof, t_tf, lambda f: min(
        _time_per_call(f, min_seconds) for _ in range(3)))
    return dict(label=shape[0], path=fastest, rejected=rejected,
                others={p.name: medians[p.name] for p, _ in accepted if p.name != fastest},
                t_impl=t_impl, t_tf=t_tf, ratio=t_impl / t_tf, flops=flops,
                gflops_impl=flops / t_impl / 1e9, gflops_tf=flops / t_tf / 1e9,
                gflops_sgemm=roof, roof=flops / t_impl / 1e9 / roof,
                busy=medians["busy"] / t_impl if "busy" in medians else None,
                memory=peak_memory_ratio(kwargs), ok=ok, ceiling=bounds)


def onednn_state() -> str:
    """Whether TF's oneDNN kernels are on, as TF decided (CPU features, then
    ``TF_ENABLE_ONEDNN_OPTS``): "on", "off", or "unknown" when TF's private query is missing."""
    try:
        from tensorflow.python.util import _pywrap_util_port as port

        return "on" if port.IsMklEnabled() else "off"
    except Exception:  # noqa: BLE001 - private API
        return "unknown"


def impl_policy() -> str:
    """impl's BLAS-thread policy, as it describes itself (``impl.threads.describe()``)."""
    threads = getattr(impl, "threads", None)
    return threads.describe() if threads is not None else "none (BLAS as configured)"


def _fmt_time(seconds):
    return f"{seconds * 1e3:9.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:9.1f} us"


def summarise(rows) -> dict:
    """The goal figures over the realistic rows (all but the last, the tiny shape)."""
    realistic, tiny = rows[:-1], rows[-1]
    ratios = [r["ratio"] for r in realistic]
    largest = sorted(realistic, key=lambda r: -r["flops"])[:LARGEST]
    summary = dict(median_ratio=statistics.median(ratios), worst_ratio=max(ratios),
                   tiny_speedup=tiny["t_tf"] / tiny["t_impl"],
                   memory_ratio=max(r["memory"] for r in realistic),
                   roofline=min(r["roof"] for r in largest),
                   largest=[r["label"] for r in largest])
    bounds = [r["ceiling"] for r in realistic if r.get("ceiling") is not None]
    if bounds:
        summary["floor"] = (statistics.median(b.floor for b in bounds), max(b.floor for b in bounds))
        summary["gemm"] = (statistics.median(b.gemm for b in bounds), max(b.gemm for b in bounds))
    busy = [r["busy"] for r in rows if r["busy"] is not None]
    if busy:
        summary["contended"] = max(busy)
    return summary


def print_goals(summary) -> bool:
    """Print each goal with its figure; True when every measured goal is met."""
    checks = [("median ratio impl/TF", "median_ratio", "<=", f"{summary['median_ratio']:.2f}"),
              ("worst ratio impl/TF", "worst_ratio", "<=", f"{summary['worst_ratio']:.2f}"),
              ("tiny-shape speedup", "tiny_speedup", ">=", f"{summary['tiny_speedup']:.1f}x"),
              ("worst impl/roofline, 3 largest", "roofline", ">=", f"{summary['roofline']:.2f}"),
              ("worst peak memory / output", "memory_ratio", "<=", f"{summary['memory_ratio']:.2f}")]
    if "contended" in summary:
        checks.append(("worst impl slowdown, other core busy", "contended", "<=",
                       f"{summary['contended']:.2f}x"))
    all_met = True
    for text, key, op, shown in checks:
        met = summary[key] <= GOALS[key] if op == "<=" else summary[key] >= GOALS[key]
        all_met &= met
        print(f"{text + ':':40s} {shown:>8s} (goal {op} {GOALS[key]}: {'met' if met else 'NOT met'})")
    for key, text in (("floor", "at the SGEMM roofline (floor)"),
                      ("gemm", "the faster formulation's GEMMs alone (gemm)")):
        if key in summary:
            print(f"  lower bounds, {text}: median {summary[key][0]:.2f}, "
                  f"worst {summary[key][1]:.2f}")
    print(f"  (largest by GF: {', '.join(summary['largest'])}; memory excludes the tiny shape, "
          f"whose peak is dominated by array headers)")
    return all_met


def run(repeats, quick, contended) -> int:
    """One benchmark run in this process, in the BLAS setting it was started with."""
    from conv3dt.bench_machine import BusyCore, blas_summary, cpu_summary

    min_seconds = 0.02 if quick else 0.1
    shapes = [SHAPES[i] for i in QUICK] if quick else SHAPES
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    rng = np.random.default_rng(0)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")
    family = {"on": "oneDNN", "off": "stock"}.get(onednn_state(), "unknown")
    print(f"== impl vs TF {tf.__version__} conv3d_transpose, float32 NDHWC, median of {repeats}, "
          f"BLAS threads: {blas} (OPENBLAS_NUM_THREADS)")
    print(f"CPU: {cpu_summary()}")
    print(f"BLAS: {blas_summary()}; impl's policy: {impl_policy()}")
    print(f"TF eager kernel family: {family} (TF_ENABLE_ONEDNN_OPTS={onednn}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("tf = the fastest (median) of TF's paths that accept the shape's call; "
          "roof = impl GF/s / same-process SGEMM GF/s; floor, gemm = lower bounds of the ratio "
          "(at the SGEMM roofline; the GEMMs alone, p(hase) or s(tationary))")
    print(f"{'shape':34s} {'tf':8s} {'impl':>12s} {'TF':>12s} {'ratio':>6s} {'GF/s':>6s} "
          f"{'TF':>6s} {'SGEMM':>6s} {'roof':>5s} {'floor':>5s} {'gemm':>7s} {'mem/out':>7s}"
          + (f" {'busy×':>6s}" if contended else "") + " bound")
    busy = BusyCore() if contended else None
    rows = []
    try:
        for shape in shapes + [TINY]:
            try:
                row = run_shape(tf, shape, repeats, rng, min_seconds, busy)
            except NoTfPathError as exc:
                print(f"conv3dt bench impl: {shape[0]}: {exc}", file=sys.stderr)
                return 3
            rows.append(row)
            print(f"{row['label']:34s} {row['path']:8s} {_fmt_time(row['t_impl'])} "
                  f"{_fmt_time(row['t_tf'])} {row['ratio']:6.2f} {row['gflops_impl']:6.1f} "
                  f"{row['gflops_tf']:6.1f} {row['gflops_sgemm']:6.1f} {row['roof']:5.2f} "
                  f"{row['ceiling'].floor:5.2f} {row['ceiling'].gemm:5.2f} "
                  f"{row['ceiling'].formulation[0]} {row['memory']:7.2f}" + (f" {row['busy']:6.2f}" if busy else "")
                  + f" {'ok' if row['ok'] else 'FAIL'}", flush=True)
    finally:
        if busy is not None:
            busy.close()
    for row in rows:
        others = ", ".join(f"{p} {_fmt_time(t).strip()}" for p, t in row["others"].items())
        if others:
            print(f"{row['label']}: also accepted: {others}")
        for rejection in row["rejected"]:
            print(f"{row['label']}: {rejection.path} passed over ({rejection.error})")
    print_goals(summarise(rows))
    all_ok = all(r["ok"] for r in rows)
    print(f"results within the error bound: {'all' if all_ok else 'NOT all'}")
    return 0 if all_ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conv3dt bench impl", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per shape (median)")
    parser.add_argument("--quick", action="store_true", help="4 shapes, 3 repeats, short loops")
    parser.add_argument("--blas-threads", action="append", default=None, metavar="default|N",
                        help="BLAS setting of a run (repeatable; default: default and 1), each "
                        "in a child process with OPENBLAS/OMP/MKL_NUM_THREADS=N")
    parser.add_argument("--contended", action="store_true",
                        help="also time impl with a busy loop of ours on the last CPU")
    parser.add_argument("--here", action="store_true", help=argparse.SUPPRESS)  # a child's run
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    repeats = min(args.repeats, 3) if args.quick else args.repeats
    if args.here:
        return run(repeats, args.quick, args.contended)
    settings = args.blas_threads or ["default", "1"]
    for setting in settings:
        if setting != "default" and not (setting.isdigit() and int(setting) >= 1):
            parser.error(f"--blas-threads must be 'default' or a positive integer, got {setting!r}")
    worst = 0
    for setting in settings:
        env = {k: v for k, v in os.environ.items()
               if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        if setting != "default":
            env.update(OPENBLAS_NUM_THREADS=setting, OMP_NUM_THREADS=setting, MKL_NUM_THREADS=setting)
        child = [sys.executable, "-m", "conv3dt.bench_impl", "--here", "--repeats", str(repeats)]
        child += ["--quick"] * args.quick + ["--contended"] * args.contended
        worst = max(worst, subprocess.call(child, env=env))
    return worst


if __name__ == "__main__":
    sys.exit(main())
