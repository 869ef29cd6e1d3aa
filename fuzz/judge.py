"""Judging: Outcome(s) of one Case → list[Finding]. Pure functions (no TensorFlow, no I/O).

Valid Cases (``judge_value``):
  - the target must return (a rejection is an ``accept-reject`` Finding);
  - dtype and shape exact (``dtype`` / ``shape`` Findings);
  - exact Cases: every element equal to the once-rounded truth (``exactness``; ``==`` so that
    the sign of an exact zero, which depends on the accumulator's initial +0, is not judged);
  - otherwise per element, with ``A`` the magnitude and ``b`` the bound of ``fuzz.truth``:
    where a non-finite input reaches (``reached`` mask) the result must be non-finite (IEEE:
    such a sum holds an inf or nan product); elsewhere, where an intermediate may overflow
    (``overflow`` mask) a non-finite result is allowed; where the truth is nan the result must be
    nan; where it is ±inf, the same inf; elsewhere the result must be finite with
    ``|y − y_ref| ≤ b`` (``value-mismatch``). ``headroom = max |y − y_ref|/b``. A
    value-mismatch says where its violations lie (``fuzz.locate``): ``details["where"]``, the
    worst index in ``details["worst_index"]`` and a one-line summary at the end of ``observed``;
  - float16/bfloat16 within that bound must also be within the float32-accumulation bound
    (``accumulation-precision``: the contract names no accumulation precision, so this is a
    finding of its own kind, which a ledger entry can accept for a kernel that sums in half).
Invalid Cases (``judge_rejection``): the target must raise (``accept-reject``); for the rules
the documentation names the class must be ``ValueError``, for the others it must be (a subclass
of) the class ``impl`` raises (``error-class``).
Crashes and timeouts are always Findings.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from conv3dt.fuzz.findings import Finding
from conv3dt.fuzz.invalid import BY_NAME, family_of
from conv3dt.fuzz.locate import locate
from conv3dt.oracle.case import Case
from conv3dt.oracle.outcome import Outcome
from conv3dt.oracle.repro import render_reproducer


def repro(case: Case, target: str, kind: str, prop: str) -> str:
    """A standalone script reproducing a ``kind`` Finding of property ``prop`` for ``case`` on
    ``target``: the call made the target's own way (``oracle.repro.render_reproducer``: its
    oneDNN setting, graph, tf.function, XLA, v2 or gradient form), then judged as the gate did
    (``fuzz.recheck``: exit 3 when it reproduces)."""
    from conv3dt.fuzz.recheck import check_lines

    return render_reproducer(case, target, check=check_lines(case, target, kind, prop))


def kernels_of(*outs: Outcome | None) -> list[dict[str, Any]]:
    """The distinct kernels (``oracle.kernels.KernelObservation`` JSON) that produced ``outs``."""
    seen = dict.fromkeys(o.kernel for o in outs if o is not None and o.kernel is not None)
    return [k.to_json() for k in seen]


def make_finding(kind: str, case: Case, target: str, prop: str, expected: str, observed: str,
                 headroom: float | None = None, out: Outcome | None = None, **details: Any) -> Finding:
    """A Finding; ``out`` is the judged Outcome (its kernel is named in the Finding)."""
    return Finding(kind=kind, target=target, property=prop, case=case.to_json(),
                   case_summary=case.summary(), expected=expected, observed=observed,
                   repro=repro(case, target, kind, prop), headroom=headroom, details=details,
                   kernels=kernels_of(out))


def _process_failure(case: Case, out: Outcome, target: str, prop: str) -> list[Finding]:
    if out.kind == "crashed":
        return [make_finding("crash", case, target, prop, "a result or an exception",
                             out.describe(), out=out, signal=out.signal_name, exit_code=out.exit_code,
                             stderr_tail=out.stderr_tail[-1500:])]
    if out.kind == "timeout":
        return [make_finding("timeout", case, target, prop, "a result or an exception",
                             out.describe(), out=out, stderr_tail=out.stderr_tail[-1500:])]
    return []


def _dtype_name(a: np.ndarray) -> str:
    return "bfloat16" if a.dtype.name == "bfloat16" else a.dtype.name


#: The project's own references (``impl``, ``impl-grad``): judged by the strict bound, without
#: the flush-to-zero allowance other targets get.
STRICT_TARGETS = ("impl", "impl-grad")


def judge_value(case: Case, out: Outcome, truth, target: str, prop: str, strict: bool = False
                ) -> tuple[list[Finding], float | None]:
    """Judge a target's Outcome on a valid Case against ``truth`` (a ``fuzz.truth.Truth``).
    ``strict``: use the bound without the flush-to-zero allowance (``STRICT_TARGETS``)."""
    if out.kind in ("crashed", "timeout"):
        return _process_failure(case, out, target, prop), None
    if out.kind == "raised":
        return [make_finding("accept-reject", case, target, prop, "a result (the call is valid)",
                             out.describe(), out=out, error_class=out.error_class,
                             message=(out.message or "")[:1500])], None
    y = out.value
    if _dtype_name(y) != truth.dtype:
        return [make_finding("dtype", case, target, prop, f"dtype {truth.dtype}",
                             f"dtype {_dtype_name(y)}", out=out)], None
    if tuple(y.shape) != truth.shape:
        return [make_finding("shape", case, target, prop, f"shape {list(truth.shape)}",
                             f"shape {list(y.shape)}", out=out)], None
    if y.size == 0:
        return [], 0.0
    if case.exact:
        bad = ~((y == truth.exact_value) | (np.isnan(y.astype(np.float64)) & np.isnan(truth.y_ref)))
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return [make_finding("exactness", case, target, prop,
                                 f"bit-identical integers; at {list(idx)}: {float(truth.exact_value[idx])!r}",
                                 f"{int(bad.sum())} of {bad.size} differ; at {list(idx)}: "
                                 f"{float(y[idx])!r}", out=out, index=list(idx))], 0.0
        return [], 0.0
    findings, head = _judge_bound(case, y.astype(np.float64), truth, target, prop, strict, out)
    if not findings and truth.bound_accum32 is not None:
        findings = _judge_accumulation(case, y.astype(np.float64), truth, target, prop, out)
    return findings, head


def _judge_accumulation(case, y, truth, target, prop, out) -> list[Finding]:
    """float16/bfloat16 within the contract bound: also within the float32-accumulation bound
    (``fuzz.bound``)? Judged where both results are finite and no intermediate may overflow."""
    ref, bound = truth.y_ref, truth.bound_accum32
    with np.errstate(all="ignore"):
        judged = np.isfinite(y) & np.isfinite(ref) & ~truth.overflow
        ratio = np.where(judged, np.abs(y - ref) / bound, 0.0)
    bad = judged & (ratio > 1.0)
    if not bad.any():
        return []
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape))
    # Past 256 bfloat16 / 2048 float16 products this is the only finite bound, so a gross
    # defect (a dropped channel block) shows here too: say where, as for a value-mismatch.
    loc = locate(bad, y, ref, ratio, case.data_format, bound)
    return [make_finding(
        "accumulation-precision", case, target, prop,
        f"|y - y_ref| <= the bound for float32 accumulation; at {list(idx)}: "
        f"y_ref={float(ref[idx])!r}, bound={bound[idx]:.3g}",
        f"{int(bad.sum())} of {bad.size} elements beyond it (within the {truth.dtype}-accumulation "
        f"contract bound); worst at {list(idx)}: y={float(y[idx])!r}, {float(ratio[idx]):.3g}x "
        f"the bound; {loc.summary()}",
        headroom=float(ratio[idx]), out=out, index=list(idx), violations=int(bad.sum()),
        where=loc.to_json())]


def _judge_bound(case, y, truth, target, prop, strict, out):
    ref, over = truth.y_ref, truth.overflow
    bound = truth.bound_strict if strict else truth.bound
    with np.errstate(all="ignore"):
        fin_y, fin_r = np.isfinite(y), np.isfinite(ref)
        err = np.where(fin_y & fin_r, np.abs(y - ref), np.inf)
        ratio = np.where(err == 0, 0.0, err / bound)
    nan_r, inf_r = np.isnan(ref), np.isinf(ref)
    ok_nonfinite = over & ~fin_y
    # Nothing can be known where the bound is infinite (the magnitude overflowed), nor where the
    # reference itself is non-finite in an element that may overflow (``over``): a reference
    # summed in float64 (the realistic tier's large float64 Cases) can overflow in an
    # intermediate to ±inf or nan where the exact sum is finite. Any result is within it
    # (elements a non-finite input reaches are judged below, by ``reached``).
    unknowable = np.isposinf(bound) | (~fin_r & over)
    ok = np.where(nan_r, np.isnan(y) | ok_nonfinite,
                  np.where(inf_r, (y == ref) | ok_nonfinite, (ratio <= 1.0) | ok_nonfinite))
    ok = ok | unknowable
    if truth.reached is not None:
        ok = np.where(truth.reached, ~fin_y, ok)
    judged = fin_y & fin_r
    head = float(ratio[judged].max()) if judged.any() else 0.0
    if ok.all():
        return [], head
    bad = ~ok
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    # Named in the observation so that a ledger entry can be exactly this narrow: non-finite
    # results where the truth is finite (a nan/inf input multiplied by 0 where it never reaches).
    nonfinite_only = bool(np.all(~fin_y[bad] & fin_r[bad]))
    finite_reached = truth.reached is not None and bool(np.all(truth.reached[bad] & fin_y[bad]))
    note = ("; every violation is a non-finite result where the truth is finite" if nonfinite_only
            else "; every violation is a finite result that a non-finite input reaches"
            if finite_reached else "")
    # Where the violations lie (fuzz.locate): deterministic for the same y, so ``observed``
    # stays comparable across runs (the Finding id does not depend on it).
    loc = locate(bad, y, ref, ratio, case.data_format, bound)
    return [make_finding(
        "value-mismatch", case, target, prop,
        f"|y - y_ref| <= bound; at {list(idx)}: y_ref={float(ref[idx])!r}, bound={bound[idx]:.3g}",
        f"{int(bad.sum())} of {bad.size} elements out of bound; at {list(idx)}: y={float(y[idx])!r}"
        f"{note}; {loc.summary()}",
        headroom=float(np.nanmax(np.where(bad, ratio, 0.0))), out=out, index=list(idx),
        violations=int(bad.sum()), worst_index=loc.worst, where=loc.to_json())], head


class Expectation(NamedTuple):
    """The error classes accepted for an invalid Case, and where that expectation comes from."""
    classes: tuple[str, ...]
    source: str

    def text(self) -> str:
        return f"raises {' or '.join(self.classes)} ({self.source})"


#: The documentation's own sentence (``Raises``), quoted where a Finding cites it.
DOC_RAISES = ("the documentation: ValueError 'if input/output depth does not match filter's "
              "shape, or if padding is other than VALID or SAME'")


def expectation(case: Case, impl_out: Outcome | None) -> Expectation:
    """The classes the contract accepts for the Case's invalid family, with their source:

    - the documentation's class for its own rules (``InvalidFamily.promise``);
    - otherwise the class ``impl`` raises for a rule TensorFlow enforces (``ValueError`` if impl
      did not raise), plus the documentation's class where its sentence covers these inputs too
      (``InvalidFamily.doc_also``: ``padding=None`` is "other than 'VALID' or 'SAME'")."""
    name = family_of(case) or ""
    fam = BY_NAME.get(name)
    if fam is not None and fam.promise:
        return Expectation((fam.promise,), DOC_RAISES)
    if impl_out is None or impl_out.kind != "raised":
        return Expectation(("ValueError",), f"impl accepted invalid:{name}: the contract's default")
    classes = (impl_out.short_class or "ValueError",)
    source = f"a rule TensorFlow enforces, no class documented: impl's class for invalid:{name}"
    if fam is not None and fam.doc_also and fam.doc_also not in classes:
        classes += (fam.doc_also,)
        source += f"; {DOC_RAISES}"
    return Expectation(classes, source)


def judge_rejection(case: Case, out: Outcome, impl_out: Outcome | None, target: str,
                    prop: str) -> list[Finding]:
    """Judge a target's Outcome on an invalid Case (label ``invalid:<family>``)."""
    if out.kind in ("crashed", "timeout"):
        return _process_failure(case, out, target, prop)
    expected = expectation(case, impl_out)
    if out.kind == "value":
        return [make_finding("accept-reject", case, target, prop, expected.text(),
                             out.describe(), out=out, family=family_of(case),
                             expected_source=expected.source)]
    if not any(out.is_instance_of(cls) for cls in expected.classes):
        return [make_finding("error-class", case, target, prop, expected.text(),
                             out.describe(), out=out, error_class=out.error_class,
                             message=(out.message or "")[:1500], family=family_of(case),
                             expected_source=expected.source)]
    return []
