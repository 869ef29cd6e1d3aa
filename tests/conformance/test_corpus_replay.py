"""Collected here from the shipped module ``fuzz/conformance/test_corpus_replay.py`` (one copy of the code)."""
from conv3dt.fuzz.conformance.test_corpus_replay import *  # noqa: F401,F403
