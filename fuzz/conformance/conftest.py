"""Registers the conformance plugin when pytest runs this directory (``conv3dt gate``)."""
from conv3dt.fuzz.conformance.plugin import *  # noqa: F401,F403
