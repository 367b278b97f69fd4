"""The IR ops, one module per op, each one :class:`~.base.OpDef` registered in :data:`OPS`.

=============  =================================================  ==========================
op             computes                                           module
=============  =================================================  ==========================
``dense``      ``bias + weight @ x``                              :mod:`.dense`
``requant``    ``clip(round_shift(x * multiplier, shift))``       :mod:`.requant`
``conv2d``     2-D convolution of an NHWC image (groups)          :mod:`.conv2d`
``maxpool2d``  window maximum                                     :mod:`.pool`
``avgpool2d``  window mean (power-of-two window)                  :mod:`.pool`
``flatten``    ``x.reshape(-1)``                                  :mod:`.flatten`
``add``        ``(x0 << shift0) + (x1 << shift1)``                :mod:`.add`
``rnn``        Elman recurrent layer (tanh table)                 :mod:`.rnn`
``gru``        gated recurrent unit (sigmoid/tanh tables)         :mod:`.gru`
``lstm``       long short-term memory (sigmoid/tanh tables)       :mod:`.lstm`
``thermometer``  bits ``x[f] >= thresholds[f, t]`` (input encoder)   :mod:`.lut`
``lut``        table neurons: ``table[j, address of k input bits]`` :mod:`.lut`
``popcount``   per-class count of bits (output aggregation)       :mod:`.lut`
=============  =================================================  ==========================

Every node may also carry ``hw``, a JSON dict of hardware annotations that the op checks and
the golden kernels ignore. Adding an op means adding one module here (and importing it below).
"""
from .base import OPS, OpDef, op_def, register
from .dense import dense_acc_type, dense_range
from .requant import requant_range
from .window import conv_out_size, sliding_windows, window_geometry
from .conv2d import conv_group_columns, conv_matrix, conv_range
from .pool import pool_kernel
from .add import add_range, add_type
from . import flatten, rnn, gru, lstm  # noqa: F401  (importing an op's module registers it)
from . import lut  # noqa: F401  (thermometer, lut, popcount: logic-domain networks)

#: names of the recurrent ops (sequence in, hidden state), from the registry
RECURRENT_OPS = tuple(name for name, op in OPS.items() if op.recurrent)


def infer_range(graph, node):
    """Check ``node`` in ``graph`` and return the worst-case bounds ``(lo, hi)`` of its output
    (per channel or per element): :meth:`OpDef.check` of the node's op."""
    return op_def(node).check(graph, node)


__all__ = ["OPS", "OpDef", "op_def", "register", "RECURRENT_OPS", "infer_range",
           "dense_range", "dense_acc_type", "requant_range", "pool_kernel", "window_geometry",
           "conv_out_size", "conv_range", "conv_matrix", "conv_group_columns",
           "sliding_windows", "add_range",
           "add_type"]
