"""The recurrent ops' shared names, under their old import path.

The definitions live in :mod:`ddnhw.ir.ops.recurrent` (shared semantics and helpers) and the
op modules :mod:`ddnhw.ir.ops.rnn`, :mod:`~ddnhw.ir.ops.gru`, :mod:`~ddnhw.ir.ops.lstm`.
"""
from .ops import RECURRENT_OPS
from .ops.base import column_range
from .ops.recurrent import (MAX_LUT, gates, lut_act, recurrent_geometry, recurrent_range,
                            recurrent_steps, sigmoid_table, tanh_table)

__all__ = ["RECURRENT_OPS", "MAX_LUT", "column_range", "gates", "lut_act", "recurrent_geometry",
           "recurrent_range", "recurrent_steps", "sigmoid_table", "tanh_table"]
