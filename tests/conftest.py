"""Registers the conformance plugin (``fuzz/conformance/plugin.py``) for ``pytest tests``: its
options (``--target``, ``--examples``, ``--seed``, ``--ledger``, ...) and the Hypothesis profiles
(``--hypothesis-profile ci|dev|nightly``) exist from the start; the conformance properties run
under ``ci`` when no profile is given."""
pytest_plugins = ["conv3dt.fuzz.conformance.plugin"]
