"""A run's exit code and its one-line reason, from facts about the run: one ladder for the gate
(``conv3dt.gate.verdict_exit``) and for merged shards (``reports.shards.merged_exit``).

The rungs, first match wins:

1. **stopped** by a signal or Ctrl-C: that stop's code (128 + the signal; 130);
2. **cut short** by ``--max-time``: 1 with new findings, else 4 (not everything was judged);
3. an **infrastructure failure** (test errors, a failed shard, a missing shard): 3, unless there
   are new findings (they are the verdict);
4. **coverage gaps**, required cells never hit: 3, unless there are new findings;
5. an **unexplained failure** (pytest failed and the session recorded no new finding): 3;
6. **new findings**: 1;
7. otherwise 0: only known deviations.
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["EXIT_OK", "EXIT_FINDINGS", "EXIT_USAGE", "EXIT_INFRA", "EXIT_INCOMPLETE", "ExitFacts",
           "exit_for"]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INFRA, EXIT_INCOMPLETE = 0, 1, 2, 3, 4


class ExitFacts(NamedTuple):
    """What decides a run's exit (module docstring). Reasons are complete phrases; ``cut_short``
    names what was cut (``"cut short by --max-time"``) and ``unjudged`` what that left undone
    when nothing new was found; ``gaps_in`` names where the tripwire ran and ``gaps_note`` is
    appended to the cells it names."""
    new: int
    stopped: tuple[int, str] | None = None
    cut_short: str | None = None
    unjudged: str = ""
    infra: str | None = None
    gaps: tuple[str, ...] = ()
    gaps_in: str = "coverage tripwire"
    gaps_note: str = ""
    unexplained: str | None = None


def exit_for(facts: ExitFacts) -> tuple[int, str]:
    """``(exit code, reason)`` by the ladder of the module docstring."""
    new = facts.new
    if facts.stopped is not None:
        return facts.stopped
    if facts.cut_short:
        return ((EXIT_FINDINGS, f"{new} new finding(s); {facts.cut_short}") if new else
                (EXIT_INCOMPLETE, f"{facts.cut_short} with nothing new{facts.unjudged}"))
    if facts.infra and not new:
        return EXIT_INFRA, facts.infra
    if facts.gaps and not new:
        return EXIT_INFRA, (f"{facts.gaps_in}: {len(facts.gaps)} required cell(s) never hit: "
                            f"{', '.join(facts.gaps)}{facts.gaps_note}")
    if facts.unexplained and not new:
        return EXIT_INFRA, facts.unexplained
    if new:
        return EXIT_FINDINGS, f"{new} new finding(s)"
    return EXIT_OK, "only known deviations"
