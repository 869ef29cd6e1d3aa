"""Replay of the regression corpus: each saved Finding's Case, judged again on its target.

Still deviating and not in the ledger → the test fails (the regression is still there); no
deviation → reported as fixed in ``stats["corpus"]``; target not selected → skipped."""
import pytest

from fuzz import corpus, profiles
from fuzz.properties import FindingError, check_invalid, check_valid

ENTRIES = corpus.load(profiles.ACTIVE["corpus_dir"] or corpus.DEFAULT_DIR)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["finding_id"] for e in ENTRIES])
def test_corpus_replay(ctx, entry):
    if entry["target"] not in ctx.pools:
        pytest.skip(f"target {entry['target']} not selected")
    case = entry["case_obj"]
    sub = type(ctx)({entry["target"]: ctx.pools[entry["target"]]}, ctx.recorder, ctx.ledger,
                    ctx.impl_pool)
    status = ctx.recorder.extra.setdefault("corpus", {"fixed": {}, "reproduced": {}})
    check = check_valid if case.label == "valid" else check_invalid
    try:
        check(case, sub, "corpus")
    except FindingError as exc:
        if any(f.kind == entry["kind"] for f in exc.findings):
            status["reproduced"][entry["finding_id"]] = 1
        raise
    status["fixed"][entry["finding_id"]] = 1
