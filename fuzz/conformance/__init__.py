"""The conformance properties, shipped with the package so that ``conv3dt gate`` runs them from
any install (``pytest <this directory>``): ``plugin.py`` is the pytest plugin (options, target
pools, ledger, Finding capture, coverage tripwire), ``conftest.py`` registers it, ``test_*.py``
are the properties. In the source tree ``tests/conftest.py`` registers the same plugin and
``tests/conformance/`` re-exports these tests, so that ``pytest tests`` runs them too."""
