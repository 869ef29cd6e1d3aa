#!/usr/bin/env bash
# Mutation testing of impl/ with mutmut 3 ([tool.mutmut] in pyproject.toml), in a scratch copy of
# the repository so the shared working tree never sees mutmut's mutants/ directory. Prints the
# score (killed / total, where timeouts and segfaults count as killed) and every survivor.
# Usage: scripts/mutation.sh [max_children]   (default 2: this machine has 2 cores)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
children="${1:-2}"
work="$(mktemp -d /tmp/conv3dt-mutation.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tests/unit"
cp -r "$repo/impl" "$work/impl"
cp "$repo/pyproject.toml" "$work/"
cp "$repo/tests/__init__.py" "$work/tests/__init__.py"
cp "$repo/tests/unit/__init__.py" "$repo/tests/unit/loop_reference.py" \
   "$repo"/tests/unit/test_impl_*.py "$work/tests/unit/"
find "$work" -name __pycache__ -prune -exec rm -rf {} +
cd "$work"
python -m mutmut run --max-children "$children" > mutmut-run.log 2>&1 || true
python -m mutmut results --all true > results.txt 2>&1 || true
python - <<'PY'
import collections, re
statuses = collections.Counter()
survivors = []
for line in open("results.txt"):
    match = re.match(r"\s*(\S+): (.+)$", line)
    if not match:
        continue
    name, status = match.groups()
    statuses[status.strip()] += 1
    if status.strip() in ("survived", "no tests"):
        survivors.append(name)
total = sum(statuses.values())
killed = statuses["killed"] + statuses["timeout"] + statuses["segfault"]
print("mutmut statuses:", dict(statuses))
if total:
    print(f"mutation score: {killed}/{total} = {100.0 * killed / total:.1f}% killed")
else:
    print("mutation score: no mutants found (see mutmut-run.log)")
    print(open("mutmut-run.log").read()[-3000:])
for name in survivors:
    print("survivor:", name)
PY
if [ -n "${MUTATION_DIFFS:-}" ]; then
  grep -E ": (survived|no tests)" results.txt | sed 's/:.*//' | while read -r mutant; do
    python -m mutmut show "$mutant" || true
  done
fi
