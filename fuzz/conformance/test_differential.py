"""Differential property: every target vs the float64-or-better truth under the rigorous bound.

Each example draws one call structure and ``VALUE_BATCH`` (4) Cases with different values
(``fuzz.strategies.valid_batches``: tf.function and XLA then trace and compile once per
example); each Case is judged on every selected target at once (one ``(Case, target)`` judgment per
target: what the gate and ``conv3dt bench fuzz`` count as an example). Explicit examples: the
deterministic rare-cell Cases (zero-size N / Cin / Cout / spatial, drawn rarely on purpose since
TF 2.21 crashes or corrupts on some), the valid Cases at the limits (``fuzz.limits``: strides and
dilations at the int32 / int64 limits, a zero extent on every axis) and every valid corpus Case
— in a shard (``fuzz.shard``) the part of them it owns."""
from hypothesis import given

from conv3dt.fuzz import corpus, profiles
from conv3dt.fuzz.continuous import share_key
from conv3dt.fuzz.covering import floor_for
from conv3dt.fuzz.failures import every_failure, explicit
from conv3dt.fuzz.properties import check_valid_batch
from conv3dt.fuzz.limits import limit_cases
from conv3dt.fuzz.strategies import rare_cell_cases, valid_batches


def _with_examples(test):
    shard = profiles.shard()
    for case in shard.take(rare_cell_cases() + limit_cases(), key=lambda c: c.case_id):
        test = explicit("differential", cases=[case])(test)
    entries = corpus.scan(profiles.ACTIVE["corpus_dir"] or corpus.DEFAULT_DIR)[0]  # corrupt: test_corpus_replay
    for entry in shard.take(entries, key=lambda e: e["finding_id"]):
        if entry["case_obj"].label == "valid" and not entry["case_obj"].exact:
            test = explicit("differential", cases=[entry["case_obj"]])(test)
    return test


@profiles.settings_for("differential")
@_with_examples
@given(cases=profiles.within_domain(valid_batches))
def differential(ctx, cases):
    check_valid_batch(cases, ctx, "differential")


# The store's seed and HypoFuzz's key (fuzz.profiles.seeded, fuzz.continuous.share_key) are applied
# here, not as decorators: decorator lines are part of the source Hypothesis hashes to seed a
# derandomized (ci) run, whose examples would otherwise change.
differential = share_key("differential")(profiles.seeded(differential))


def test_differential(ctx):
    # the coverage floor (fuzz.covering): every reachable required cell, whatever the targets return
    floor = [[case] for case in floor_for(ctx, "differential")]
    every_failure(differential, ctx.budget, ctx,
                  first=lambda: [check_valid_batch(cases, ctx, "differential") for cases in floor])
