"""Replay of the regression corpus: each saved Finding's Case, re-judged on its target with its
own property (``fuzz.corpus.replay``).

Still deviating and not in the ledger → the test fails (the regression is still there); no
deviation of the entry's kind → ``fixed``; reproduced but now in the ledger → ``known``; target
not selected → skipped. A corrupt entry file is one failing item naming the file. Every result
goes to ``stats["corpus"]`` = {"replayed": n, "fixed": [ids], "still_failing": [ids],
"known": [ids], "skipped": [ids], "corrupt": [paths]}. A shard (``fuzz.shard``) replays the
entries it owns."""
import pytest

from conv3dt.fuzz import corpus, profiles
from conv3dt.fuzz.properties import FindingError

ENTRIES, ERRORS = corpus.scan(profiles.ACTIVE["corpus_dir"] or corpus.DEFAULT_DIR)
ENTRIES = profiles.shard().take(ENTRIES, key=lambda e: e["finding_id"])      # fuzz.shard
ERRORS = profiles.shard().take(ERRORS, key=lambda x: x.path.name)
ITEMS = [(e["finding_id"], e, None) for e in ENTRIES] + [(f"corrupt:{x.path.name}", None, x)
                                                          for x in ERRORS]


@pytest.mark.parametrize("entry,error", [(e, x) for _, e, x in ITEMS], ids=[i for i, _, _ in ITEMS])
def test_corpus_replay(ctx, entry, error):
    stats = ctx.recorder.extra
    if error is not None:
        corpus.record(stats, str(error.path), "corrupt")
        pytest.fail(str(error), pytrace=False)
    result = corpus.replay(entry, ctx)
    corpus.record(stats, entry["finding_id"], result.status)
    if result.status == "skipped":
        pytest.skip(f"target {entry['target']} not selected")
    if result.unknown:
        raise FindingError(result.unknown)
