"""Graph transforms that write hardware decisions into the nodes' ``hw`` annotations (saved
with the model): ``apply(graph) -> (graph, changed)``, run to a fixed point by
:func:`run_passes`. See :mod:`ddnhw.passes.base` for the annotation schema."""
from .base import Pass, PassError, copy_graph, hw_of, run_passes, set_hw
from .fifo import FifoSizing
from .fold import Budget, FoldSelection, choose, plan
from .overrides import SetFolding, SetGateLanes
from .pipeline import lowering_passes
from .requant_fusion import RequantFusion
from .skip_fifo import SkipFifoSizing
from .xnor import XnorInference

__all__ = ["Pass", "PassError", "copy_graph", "hw_of", "run_passes", "set_hw", "FifoSizing",
           "Budget", "FoldSelection", "choose", "plan", "SetFolding", "SetGateLanes",
           "lowering_passes", "RequantFusion", "SkipFifoSizing", "XnorInference"]
