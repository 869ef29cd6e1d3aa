"""Differential property: every target vs the float64-or-better truth under the rigorous bound.

Each drawn Case is judged on every selected target at once (one ``(Case, target)`` judgment per
target: what the gate and ``conv3dt bench fuzz`` count as an example). Explicit examples: the
deterministic rare-cell Cases (zero-size N / Cin / Cout / spatial, drawn rarely on purpose since
TF 2.21 crashes or corrupts on some) and every valid corpus Case."""
from hypothesis import example, given

from fuzz import corpus, profiles
from fuzz.properties import check_valid
from fuzz.strategies import rare_cell_cases, valid_cases


def _with_examples(test):
    for case in rare_cell_cases():
        test = example(case=case)(test)
    for entry in corpus.scan(profiles.ACTIVE["corpus_dir"] or corpus.DEFAULT_DIR)[0]:  # corrupt: test_corpus_replay
        if entry["case_obj"].label == "valid" and not entry["case_obj"].exact:
            test = example(case=entry["case_obj"])(test)
    return test


@profiles.settings_for("differential")
@_with_examples
@given(case=valid_cases())
def test_differential(ctx, case):
    check_valid(case, ctx, "differential")
