"""Re-judging a reproducer's result: the tail of every Finding's standalone script.

A Finding's reproducer (``fuzz.judge.repro`` → ``oracle.repro``) makes the call the target's
way, keeps what happened — the result, or the exception it raised — and hands it to
:func:`recheck` (:func:`recheck_identity` for a metamorphic Finding's several calls). That judges
it with the code the gate used (``fuzz.judge``, ``fuzz.metamorphic``), prints the expectation
and the observation, and returns the script's exit status:

- ``3`` and ``reproduced: <kind>`` when a Finding of the same kind comes out again (not 1:
  that is Python's own status for an uncaught error, e.g. a reproducer that cannot run);
- ``0`` and ``did not reproduce`` otherwise.

A crash or a hang needs no judge: the script dies by the signal or never ends, which is the
reproduction (``conv3dt repro ID --run`` reads it so). The truth for a valid Case is
``fuzz.truth.truth_of`` (float64 or longdouble reference, rigorous bound); the expected error
class of an invalid one is the contract's (``fuzz.judge.expectation``), with impl's own
rejection computed here as the gate computes it.
"""
from __future__ import annotations

import json
from typing import Any

from conv3dt.oracle.case import Case
from conv3dt.oracle.outcome import Outcome

#: The script's exit status when the deviation reproduced, and when it did not.
REPRODUCED, NOT_REPRODUCED = 3, 0

_HEAD = ["# conv3dt judges what happened as the gate did (fuzz.recheck; needs conv3dt installed):",
         "# exit 3 and 'reproduced' when the deviation shows again, 0 when it does not.",
         "import sys", ""]


def _json(case: Case) -> str:
    return repr(json.dumps(case.to_json(), separators=(",", ":")))


def check_lines(case: Case, target: str, kind: str, prop: str) -> list[str]:
    """The tail of a one-call reproducer (``oracle.repro.render_reproducer``'s ``check``)."""
    return [*_HEAD, "from conv3dt.fuzz.recheck import recheck", "",
            f"sys.exit(recheck({_json(case)}, {target!r}, {kind!r}, {prop!r}, result))"]


def identity_check_lines(identity: str, case: Case, target: str, kind: str, n_calls: int
                         ) -> list[str]:
    """The tail of a metamorphic reproducer (``oracle.repro.render_calls``'s ``check``)."""
    outs = ", ".join(f"o{i}" for i in range(n_calls))
    return [*_HEAD, "from conv3dt.fuzz.recheck import recheck_identity", "",
            f"sys.exit(recheck_identity({identity!r}, {_json(case)}, {target!r}, {kind!r}, "
            f"[{outs}]))"]


def outcome_of(result: Any) -> Outcome:
    """What a reproducer's call gave, as the oracle records it: a value or an exception."""
    import numpy as np

    if isinstance(result, BaseException):
        from dataclasses import replace

        from conv3dt.oracle.worker import error_text

        return replace(Outcome.of_exception(result), message=error_text(result)[:4000])
    if hasattr(result, "numpy"):
        result = result.numpy()
    return Outcome.of_value(np.ascontiguousarray(np.asarray(result)))


def _report(kind: str, findings: list, observed: Outcome) -> int:
    same = [f for f in findings if f.kind == kind]
    if same:
        f = same[0]
        print(f"reproduced: {kind}\n  expected: {f.expected}\n  observed: {f.observed}")
        return REPRODUCED
    others = ", ".join(sorted({f.kind for f in findings})) or "none"
    print(f"did not reproduce: no {kind} (findings now: {others}); observed {observed.describe()}")
    return NOT_REPRODUCED


def recheck(case_json: str | dict, target: str, kind: str, prop: str, result: Any) -> int:
    """Judge one call's ``result`` (an array-like or the exception it raised) as the gate did;
    print expected vs observed; return the script's exit status."""
    from conv3dt.fuzz.judge import STRICT_TARGETS, judge_rejection, judge_value
    from conv3dt.fuzz.truth import truth_of

    case = Case.from_json(json.loads(case_json) if isinstance(case_json, str) else case_json)
    out = outcome_of(result)
    if case.label == "valid":
        findings, _ = judge_value(case, out, truth_of(case), target, prop,
                                  strict=target in STRICT_TARGETS)
    else:
        impl_out = None   # impl judged itself: the contract's class (the gate's "impl rejects")
        reference = "impl-grad" if case.is_gradient else "impl"
        if target != reference:
            from conv3dt.oracle.pool import TargetPool

            with TargetPool(reference) as impl:
                impl_out = impl.run([case])[0]
        findings = judge_rejection(case, out, impl_out, target, prop)
    return _report(kind, findings, out)


def recheck_identity(identity: str, case_json: str | dict, target: str, kind: str,
                     results: list) -> int:
    """Judge a metamorphic identity on the results of its variants (in ``variants(case)``
    order); print expected vs observed; return the script's exit status."""
    from conv3dt.fuzz import metamorphic

    case = Case.from_json(json.loads(case_json) if isinstance(case_json, str) else case_json)
    variants, judge = metamorphic.CHECKS[identity]
    outs = [outcome_of(r) for r in results]
    verdict = judge(case, variants(case), outs, target, target == "impl")
    return _report(kind, verdict.findings, outs[0])
