"""A TF-exact, vectorised NumPy reference for ``tf.compat.v1.nn.conv3d_transpose``.

Public API: ``conv3d_transpose`` (TF's v1 signature), ``conv3d_transpose_grads`` (both gradients
of it: the backward pass), ``conv3d`` (tf.nn.conv3d conventions, for the adjoint identity),
``normalize_call`` / ``NormalizedCall`` (validation) and ``SUPPORTED_DTYPES``.
Depends on NumPy and ml_dtypes only. See ``impl/README.md`` for the rules and measurements.
"""

from conv3dt.impl.args import SUPPORTED_DTYPES, NormalizedCall, normalize_call
from conv3dt.impl.forward import conv3d
from conv3dt.impl.gradients import conv3d_transpose_grads
from conv3dt.impl.transpose import conv3d_transpose

__all__ = ["conv3d_transpose", "conv3d_transpose_grads", "conv3d", "normalize_call",
           "NormalizedCall", "SUPPORTED_DTYPES"]
