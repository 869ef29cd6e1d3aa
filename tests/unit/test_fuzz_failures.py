"""Distinct failures and their cost (``fuzz.failures``): signatures, one Hypothesis origin per
failure, the shrink budget per failure, replays, the deadline — and that Hypothesis really
reports several independent defects of one target from one run."""
from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conv3dt.fuzz.failures import (FailureBudget, FailureKey, FindingError, every_failure, findings_in,
                           signature)
from conv3dt.fuzz.findings import Finding

CHECK = ("F0000 00:00:1796217316.204041   30122 tensor_format.h:428] Check failed: index >= 0 && "
         "index < num_total_dims Invalid index from the dimension: 4, 1, 2")


class FakeCase:
    def __init__(self, i: int) -> None:
        self.x = i
        self.case_id = f"C{i}"


def finding(kind="value-mismatch", target="t", prop="differential", label="valid", **details) -> Finding:
    return Finding(kind=kind, target=target, property=prop, case={"label": label, "n": id(details)},
                   case_summary={}, expected="e", observed="o", repro="r", details=details)


def test_a_crash_signature_is_the_signal_and_the_check_line_without_run_noise() -> None:
    a = signature(finding("crash", signal="SIGABRT", stderr_tail="stack\n" + CHECK + "\n*** Begin"))
    b = signature(finding("crash", signal="SIGABRT", stderr_tail=CHECK.replace("30122", "777")
                          .replace("4, 1, 2", "3, 1, 2").replace("1796217316.204041", "1.5")))
    assert a == b
    assert a.what.startswith("SIGABRT: tensor_format.h:428] Check failed: index >= # && index")
    assert signature(finding("crash", signal="SIGSEGV", stderr_tail=CHECK)) != a
    assert signature(finding("crash", signal=None, exit_code=3, stderr_tail="")).what == "exit code 3"


def test_error_class_findings_differ_by_class_and_by_rule() -> None:
    a = signature(finding("error-class", prop="invalid", label="invalid:channel-in",
                          error_class="tensorflow.errors.AbortedError"))
    assert a == FailureKey("error-class", "t", "invalid", "AbortedError on invalid:channel-in")
    assert a != signature(finding("error-class", prop="invalid", label="invalid:strides-length",
                                  error_class="tensorflow.errors.AbortedError"))
    assert signature(finding("accept-reject", prop="invalid", label="invalid:channel-in")).what == \
        "returned a value on invalid:channel-in"


def test_numeric_findings_are_one_failure_per_kind_target_and_property() -> None:
    assert signature(finding(target="a")) == signature(finding(target="a"))
    assert signature(finding(target="a")) != signature(finding(target="b"))
    assert signature(finding(prop="exact")) != signature(finding(prop="differential"))
    assert signature(finding("timeout")).what == "timeout"


def test_one_exception_class_per_key_so_hypothesis_tells_them_apart() -> None:
    k1, k2 = FailureKey("crash", "t", "p", "SIGABRT"), FailureKey("timeout", "t", "p", "timeout")
    assert FindingError.for_key(k1) is FindingError.for_key(k1)
    assert FindingError.for_key(k1) is not FindingError.for_key(k2)
    assert issubclass(FindingError.for_key(k2), FindingError) and FindingError.for_key(k2).key == k2


def test_an_example_raises_its_smallest_key_and_a_replay_raises_the_same_without_judging() -> None:
    budget = FailureBudget()
    both = [finding("timeout"), finding("crash", signal="SIGABRT")]
    with pytest.raises(FindingError) as first:
        budget.fail("differential", [FakeCase(1)], both)
    assert type(first.value).key.kind == "crash" and first.value.findings == both
    with pytest.raises(FindingError) as again:
        budget.before_example("differential", [FakeCase(1)])
    assert again.value is first.value
    assert budget.before_example("differential", [FakeCase(2)]) is True


def test_a_shrink_round_raises_only_its_key_and_only_within_its_shrink_budget() -> None:
    budget = FailureBudget(shrink_seconds=0.05)
    crash, timeout = finding("crash", signal="SIGSEGV"), finding("timeout")
    budget.new_round(shrinking=signature(crash))
    budget.fail("differential", [FakeCase(0)], [timeout])             # another key: counted only
    with pytest.raises(FindingError) as exc:
        budget.fail("differential", [FakeCase(1)], [crash, timeout])
    assert type(exc.value).key == signature(crash)
    time.sleep(0.06)
    budget.fail("differential", [FakeCase(2)], [crash])             # past the budget: counted only
    stats = budget.to_json()["keys"]
    assert stats[signature(crash).text()]["hits"] == 2 and stats[signature(crash).text()]["raised"] == 1
    assert stats[signature(timeout).text()] == {"hits": 2, "raised": 0, "shrink_s": 0.0}
    budget.new_round(shrinking=signature(timeout))                  # its own round, its own clock
    with pytest.raises(FindingError) as exc:
        budget.before_example("differential", [FakeCase(0)])        # judged before: not re-run
    assert type(exc.value).key == signature(timeout)


def test_a_survey_raises_nothing_and_remembers_each_keys_first_example() -> None:
    budget = FailureBudget()
    budget.new_round(surveying=True)
    budget.fail("differential", [FakeCase(1)], [finding("timeout")])
    budget.fail("differential", [FakeCase(2)], [finding("crash", signal="SIGABRT"), finding("timeout")])
    assert budget.before_example("differential", [FakeCase(2)]) is False
    assert [(k.kind, ex) for k, ex in budget.seen.items()] == [("timeout", ("differential", "C1")),
                                                               ("crash", ("differential", "C2"))]


def test_past_the_deadline_no_example_is_judged_and_the_budget_says_cut_short() -> None:
    budget = FailureBudget(deadline=time.time() - 1)
    assert budget.before_example("invalid", [FakeCase(1)]) is False
    budget.fail("invalid", [FakeCase(1)], [finding()])                 # nothing raised any more
    assert budget.to_json()["cut_short"] == {"reason": "max-time", "skipped_examples": 1}
    assert "cut_short" not in FailureBudget().to_json()


def test_bad_budget_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="shrink_seconds must be > 0"):
        FailureBudget(shrink_seconds=0)


def defects_at(x: int) -> list[Finding]:
    """Three independent defects, the last two only on inputs Hypothesis meets late."""
    found = []
    if x >= 7:
        found.append(finding("crash", signal="SIGABRT", x=x))
    if x % 1000 == 999:
        found.append(finding("timeout", x=x))
    if 5000 <= x < 5100:
        found.append(finding("shape", x=x))
    return found


def judging_property(budget: FailureBudget, defects, judged: list[int]):
    @settings(max_examples=600, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.integers(0, 10_000))
    def prop(x):
        if not budget.before_example("differential", [FakeCase(x)]):
            return
        judged.append(x)
        budget.fail("differential", [FakeCase(x)], defects(x))
    return prop


def reproducers(budget: FailureBudget, judged: list[int]) -> dict[str, int]:
    """every_failure's reported failures: key kind -> the input of its reproducer."""
    with pytest.raises(BaseExceptionGroup) as group:
        every_failure(judging_property(budget, defects_at, judged), budget)
    keys = [type(e).key for e in group.value.exceptions]
    assert len(set(keys)) == len(keys)                          # one error per distinct failure
    return {type(e).key.kind: next(f.details["x"] for f in e.findings if signature(f) == type(e).key)
            for e in group.value.exceptions}


def test_rounds_report_every_independent_defect_shrunk_and_judge_no_example_twice() -> None:
    """A survey, then one shrink round per distinct failure: every defect is reported, each
    shrunk on its own, and no example is judged twice."""
    judged: list[int] = []
    found = reproducers(FailureBudget(), judged)
    assert sorted(found) == ["crash", "shape", "timeout"]
    assert found["crash"] == 7 and found["shape"] == 5000 and found["timeout"] % 1000 == 999
    assert len(judged) == len(set(judged))


def test_the_same_seed_gives_the_same_reproducers() -> None:
    assert reproducers(FailureBudget(), []) == reproducers(FailureBudget(), [])


def test_the_survey_judges_what_a_failure_free_run_judges_so_failures_cannot_shift_it() -> None:
    """Hypothesis stops generating ten seconds (wall clock) after a run's first failure; the
    survey raises nothing, so which examples a seed judges never depends on the machine."""
    budget, with_defects = FailureBudget(), []
    with pytest.raises(BaseExceptionGroup):
        every_failure(judging_property(budget, defects_at, with_defects), budget)
    clean, without = FailureBudget(), []
    every_failure(judging_property(clean, lambda x: [], without), clean)
    assert with_defects[:len(without)] == without and len(without) > 100


def test_rounds_reraise_what_is_not_a_finding() -> None:
    budget = FailureBudget()

    def broken():
        raise KeyError("a bug in the suite")

    with pytest.raises(KeyError):
        every_failure(broken, budget)


def test_a_failure_only_an_explicit_example_shows_gets_no_round_and_is_reported_with_it() -> None:
    """An explicit example is deterministic and small: a round without the explicit phase
    cannot meet its failure again and would generate the whole run anew looking for it (the
    TF 2.21 gate judged 88,956 differential examples instead of ~11,000, one full run per key
    only an explicit limit Case showed). It is reported with the explicit example instead."""
    from conv3dt.fuzz.failures import explicit

    budget, calls = FailureBudget(), []

    @settings(max_examples=50, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @explicit("differential", cases=[FakeCase(-7)])
    @given(cases=st.lists(st.integers(0, 100).map(FakeCase), min_size=1, max_size=1))
    def prop(cases):
        calls.append(cases[0].x)
        if budget.before_example("differential", cases):
            budget.fail("differential", cases,
                        [finding("crash", signal="SIGSEGV", x=c.x) for c in cases if c.x < 0])

    with pytest.raises(FindingError) as err:
        every_failure(prop, budget)
    assert [f.details["x"] for f in err.value.findings] == [-7]
    assert calls.count(-7) == 1 and len(calls) <= 51, len(calls)   # the survey only, no round


def test_each_judged_example_is_counted_once_in_the_phase_that_judged_it() -> None:
    """Honest counts: every example the survey judges is ``generate`` (or ``explicit``), every
    new one a shrink round judges is ``shrink``; replays are judged by none and counted by none,
    so the phases add up to the examples judged."""
    from conv3dt.fuzz.failures import explicit

    budget, phases = FailureBudget(), {}

    @settings(max_examples=200, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @explicit("differential", cases=[FakeCase(-3)])
    @given(cases=st.lists(st.integers(0, 10_000).map(FakeCase), min_size=1, max_size=1))
    def prop(cases):
        if not budget.before_example("differential", cases):
            return
        phase = budget.phase("differential", cases)
        phases[phase] = phases.get(phase, 0) + 1
        budget.fail("differential", cases, defects_at(cases[0].x))

    # one distinct failure (FindingError) or several (a group): which rare defects 200 derandomized
    # draws meet depends on the constants Hypothesis collects from the modules this process has
    # loaded (under xdist: whatever other tests imported first); the counts hold either way
    with pytest.raises((FindingError, BaseExceptionGroup)):
        every_failure(prop, budget)
    assert phases["explicit"] == 1 and phases["generate"] >= 150 and phases["shrink"] > 0
    assert sum(phases.values()) == len(budget.judged)
