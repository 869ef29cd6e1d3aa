"""Collected here from the shipped module ``fuzz/conformance/test_gradients.py`` (one copy of the code)."""
from conv3dt.fuzz.conformance.test_gradients import *  # noqa: F401,F403
