"""The conformance properties as HypoFuzz fuzz targets (``conv3dt continuous``; ``fuzz.continuous``).

Not collected by the gate (the file name does not start with ``test_``): ``conv3dt continuous``
names it to ``hypothesis fuzz`` with ``--rootdir`` this directory, so that each test's node id is
``hypofuzz_targets.py::test_<property>`` and its database key equals the gate's
(``fuzz.continuous.share_key``). Each is the gate's own property function, fixtures included.
"""
from conv3dt.fuzz.conformance.test_differential import differential as test_differential
from conv3dt.fuzz.conformance.test_exact import exact as test_exact
from conv3dt.fuzz.conformance.test_gradients import grad_differential as test_grad_differential
from conv3dt.fuzz.conformance.test_gradients import grad_exact as test_grad_exact
from conv3dt.fuzz.conformance.test_gradients import grad_invalid as test_grad_invalid
from conv3dt.fuzz.conformance.test_gradients import grad_metamorphic as test_grad_metamorphic
from conv3dt.fuzz.conformance.test_invalid import invalid as test_invalid
from conv3dt.fuzz.conformance.test_metamorphic import metamorphic_identities as test_metamorphic

__all__ = ["test_differential", "test_exact", "test_invalid", "test_metamorphic",
           "test_grad_differential", "test_grad_exact", "test_grad_invalid", "test_grad_metamorphic"]
