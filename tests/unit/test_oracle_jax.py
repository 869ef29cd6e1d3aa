"""The optional ``jax`` target (``pip install 'conv3dt[jax]'``): lax mapped to TF's semantics.

jax is an optional extra, so these tests need it installed (TF tests never skip). The
padding mapping itself is checked without jax.
"""
from __future__ import annotations

import numpy as np
import pytest

from conv3dt.fuzz.truth import truth_of
from conv3dt.oracle.jax_path import transpose_padding
from conv3dt.oracle.targets import jax_installed


@pytest.mark.parametrize("i, o, k, s, d, p, expected", [
    (2, 4, 2, 2, 1, 0, (1, 1)),    # SAME, exact fit
    (3, 3, 2, 1, 2, 1, (1, 1)),    # dilated SAME: eff 3, pad 1
    (2, 3, 2, 1, 1, 0, (1, 1)),    # VALID
    (2, 6, 3, 3, 1, 0, (2, 2)),    # stride 3
    (0, 0, 1, 2, 1, 0, (0, 0)),    # empty axis, stride 2 (lax dilates it to length 0)
    (0, 1, 1, 2, 1, 0, (0, 1)),    # empty input, non-empty output
])
def test_transpose_padding(i, o, k, s, d, p, expected):
    lo, hi = transpose_padding(i, o, k, s, d, p)
    assert (lo, hi) == expected
    eff = (k - 1) * d + 1
    assert max(0, (i - 1) * s + 1) + lo + hi - eff + 1 == o  # the correlation's output length is O


@pytest.mark.skipif(not jax_installed(), reason="jax is an optional extra (conv3dt[jax])")
def test_jax_target_matches_the_reference_and_rejects_invalid():
    from conv3dt.oracle.pool import TargetPool
    from tests.unit.test_oracle_tf_paths import GOOD, INVALID, PARTIAL

    cases = list(GOOD.values()) + [c for c, _, _ in PARTIAL.values()]
    with TargetPool("jax", timeout=60) as pool:
        assert pool.info()["worker"]["jax"]
        outs = pool.run(cases + list(INVALID.values()))
    for case, out in zip(cases, outs):
        assert out.kind == "value", out.describe()
        assert out.value.dtype.name == case.dtype and list(out.value.shape) == list(case.output_shape)
        truth = truth_of(case)
        assert np.all(np.abs(out.value.astype(np.float64) - truth.y_ref) <= truth.bound)
        if case.exact:
            assert out.value.tobytes() == truth.exact_value.astype(out.value.dtype).tobytes()
    assert all(o.kind == "raised" and o.short_class == "ValueError" for o in outs[len(cases):])
