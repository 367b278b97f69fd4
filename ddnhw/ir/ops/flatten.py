"""``flatten``: ``y[n, :] = x[n].reshape(-1)`` (row-major: H, W, C order); no attributes."""
from __future__ import annotations

import numpy as np

from .base import OpDef, check_out_shape, full_range, register


@register
class Flatten(OpDef):
    name = "flatten"

    def check(self, graph, node):
        x = graph.tensors[node.inputs[0]]
        n = int(np.prod(x.shape))
        check_out_shape(graph, node, (n,))
        return full_range(n, x.dtype)

    def from_layer(self, layer, in_type, in_shape):
        """No keys."""
        return {}, (int(np.prod(in_shape)),), in_type

    def run(self, node, x):
        return x.reshape(len(x), -1)
