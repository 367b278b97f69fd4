"""The recurrent golden kernels under their old import path; they are defined with their ops
(:mod:`ddnhw.ir.ops.rnn`, :mod:`~ddnhw.ir.ops.gru`, :mod:`~ddnhw.ir.ops.lstm`)."""
from ddnhw.ir.ops import op_def
from ddnhw.ir.recurrent import lut_act, recurrent_steps

__all__ = ["lut_act", "recurrent_steps", "recurrent"]


def recurrent(node, x):
    """The output of a recurrent node for inputs ``(N, T, I)`` (its op's golden kernel)."""
    return op_def(node).run(node, x)
