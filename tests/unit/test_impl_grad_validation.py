"""Invalid gradient calls: one clear error each, before any arithmetic.

Every rule of the forward (``test_impl_validation.RULES``) applies to ``conv3d_transpose_grads``
with the same class and the same exact message; then ``grad_output``'s own rules, one test each.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from conv3dt import impl
from tests.unit.loop_reference import fresh_plan_caches  # noqa: F401  (autouse fixture)
from tests.unit.test_impl_validation import BASE, EXACT_MESSAGES, RULES

G = np.ones(BASE["output_shape"], np.float32)


@pytest.fixture
def kernel_must_not_run(monkeypatch):
    """Make the gradient kernel explode if a call reaches it."""
    import conv3dt.impl.gradients as gradients_module

    def explode(*args, **kwargs):
        raise AssertionError("the gradient kernel ran before validation failed")

    monkeypatch.setattr(gradients_module, "transposed_conv_grads_ndhwc", explode)


@pytest.mark.parametrize("rule", RULES, ids=[rule[0] for rule in RULES])
def test_every_forward_rule_applies_with_the_same_message(rule, kernel_must_not_run):
    rule_id, overrides, error_class, _, _ = rule
    with pytest.raises(error_class) as caught:
        impl.conv3d_transpose_grads(**dict(BASE, grad_output=G, **overrides))
    assert type(caught.value) is error_class
    assert str(caught.value) == EXACT_MESSAGES[rule_id]


GRAD_RULES = [
    ("missing", None, ValueError,
     "grad_output=None is invalid; expected an array of the output's shape (1, 4, 4, 4, 4) "
     "(NDHWC)"),
    ("wrong_shape", np.ones((1, 4, 4, 4, 3), np.float32), ValueError,
     "grad_output.shape=(1, 4, 4, 4, 3) is invalid; expected the output shape (1, 4, 4, 4, 4) "
     "(NDHWC)"),
    ("not_5d", np.ones((4, 4, 4, 4), np.float32), ValueError,
     "grad_output.shape=(4, 4, 4, 4) is invalid; expected the output shape (1, 4, 4, 4, 4) "
     "(NDHWC)"),
    ("list_of_wrong_shape", [[1.0, 2.0]], ValueError,
     "grad_output.shape=(1, 2) is invalid; expected the output shape (1, 4, 4, 4, 4) (NDHWC)"),
    ("other_float_dtype", G.astype(np.float64), TypeError,
     "grad_output.dtype='float64' is invalid; expected the dtype of value and filter (float32); "
     "cast one explicitly"),
    ("half_dtype", G.astype(ml_dtypes.bfloat16), TypeError,
     "grad_output.dtype='bfloat16' is invalid; expected the dtype of value and filter (float32); "
     "cast one explicitly"),
    ("integer_array", G.astype(np.int32), TypeError,
     "grad_output.dtype='int32' is invalid; expected the dtype of value and filter (float32)"),
    ("complex_list", np.ones(BASE["output_shape"], np.complex64).tolist(), TypeError,
     "grad_output element type='complex128' is invalid; expected real numbers"),
    ("bool_list", np.ones(BASE["output_shape"], bool).tolist(), TypeError,
     "grad_output element type='bool' is invalid; expected real numbers"),
]


@pytest.mark.parametrize("rule", GRAD_RULES, ids=[rule[0] for rule in GRAD_RULES])
def test_grad_output_rule(rule, kernel_must_not_run):
    _, grad_output, error_class, message = rule
    with pytest.raises(error_class) as caught:
        impl.conv3d_transpose_grads(**dict(BASE, grad_output=grad_output))
    assert type(caught.value) is error_class
    assert str(caught.value) == "conv3d_transpose: " + message


def test_ncdhw_grad_output_given_in_ndhwc_order_is_named(kernel_must_not_run):
    value = np.ones((1, 3, 2, 3, 4), np.float32)          # NCDHW: Cin 3, D H W = 2 3 4
    filter = np.ones((2, 2, 2, 5, 3), np.float32)
    with pytest.raises(ValueError) as caught:
        impl.conv3d_transpose_grads(value, filter, [1, 5, 4, 6, 8],
                                    np.ones((1, 4, 6, 8, 5), np.float32), 2, "SAME", "NCDHW")
    assert str(caught.value) == ("conv3d_transpose: grad_output.shape=(1, 4, 6, 8, 5) is invalid; "
                                 "expected the output shape (1, 5, 4, 6, 8) (NCDHW)")


def test_a_forward_error_comes_before_a_grad_output_error(kernel_must_not_run):
    with pytest.raises(ValueError) as caught:
        impl.conv3d_transpose_grads(**dict(BASE, padding="same", grad_output=None))
    assert str(caught.value) == EXACT_MESSAGES["padding_wrong_case"]


def test_plain_python_grad_output_takes_the_calls_dtype():
    integers = np.ones(BASE["output_shape"], int).tolist()
    dvalue, dfilter = impl.conv3d_transpose_grads(**dict(BASE, grad_output=integers))
    expected = impl.conv3d_transpose_grads(**dict(BASE, grad_output=G))
    assert dvalue.dtype == dfilter.dtype == np.float32
    np.testing.assert_array_equal(dvalue, expected[0])
    np.testing.assert_array_equal(dfilter, expected[1])
