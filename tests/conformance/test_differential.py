"""Differential property: every target vs the float64-or-better truth under the rigorous bound."""
from hypothesis import given

from fuzz import corpus, profiles
from fuzz.properties import check_valid
from fuzz.strategies import valid_cases
from hypothesis import example


def _with_corpus(test):
    """Replay every valid corpus Case as an explicit example (fixed ones then simply pass)."""
    for entry in corpus.load(profiles.ACTIVE["corpus_dir"] or corpus.DEFAULT_DIR):
        if entry["case_obj"].label == "valid" and not entry["case_obj"].exact:
            test = example(case=entry["case_obj"])(test)
    return test


@profiles.settings_for("differential")
@_with_corpus
@given(case=valid_cases())
def test_differential(ctx, case):
    check_valid(case, ctx, "differential")
