"""``module:function`` targets for the scale-out tests (``tests/unit/test_scale_*.py``).

- ``wrong_cout3``: impl, but 1.5 × the right result when the filter has exactly 3 output
  channels. Shard 1/2 of seed 0 meets such Cases in its search (at ``--examples 6``, with an
  example database), shard 2/2 at ``--examples 1`` does not (its own control run in
  ``test_scale_redis.py`` checks that), so shard 2 can only report it by replaying shard 1's
  example from the shared store.
- ``wrong_cout3_kills_store``: the same, and its first call kills the process whose pid is in
  ``$CONV3DT_TEST_KILL_PID`` (the test's redis-server): the store is lost mid-run, at a
  deterministic point (after every session process connected to it, before any example ran).
"""
from __future__ import annotations

import os
import signal

import numpy as np

from conv3dt import impl


def wrong_cout3(*args, **kwargs):
    out = impl.conv3d_transpose(*args, **kwargs)
    filt = kwargs.get("filter", kwargs.get("filters", args[1] if len(args) > 1 else None))
    shape = np.shape(filt)      # impl accepted the call: a 5-D filter [KD, KH, KW, Cout, Cin]
    return out * 1.5 if len(shape) == 5 and shape[3] == 3 else out


def wrong_cout3_kills_store(*args, **kwargs):
    pid = int(os.environ.get("CONV3DT_TEST_KILL_PID") or 0)
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass                        # killed by an earlier call (another worker)
    return wrong_cout3(*args, **kwargs)
