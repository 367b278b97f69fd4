"""Automatic folding (compatibility names): the planner is :mod:`ddnhw.passes.fold`.

:func:`auto_fold` returns the ``folding`` dict that :func:`ddnhw.lower.build_network` and
:func:`ddnhw.lower.generate` take; :func:`plan_folding` the plan with its reasoning
(:func:`ddnhw.passes.fold.plan`).
"""
from __future__ import annotations

from ddnhw.passes.fold import Budget, layer_options, plan
from .registry import UNROLLED_MAX_WEIGHTS, divisors

__all__ = ["auto_fold", "plan_folding", "layer_options", "divisors", "Budget",
           "UNROLLED_MAX_WEIGHTS"]


def plan_folding(graph, budget=None, target_ii=None, max_luts=None, margin=0.15,
                 fallback_margin=None) -> dict:
    """:func:`ddnhw.passes.fold.plan` (``budget``: a :class:`Budget`)."""
    return plan(graph, budget, target_ii=target_ii, margin=margin,
                fallback_margin=fallback_margin, max_luts=max_luts)


def auto_fold(graph, budget=None, target_ii=None, max_luts=None, margin=0.15,
              fallback_margin=None) -> dict:
    """Choose ``{foldable layer name: (pe, simd) or None}`` (None: fully unrolled): the
    ``folding`` of :func:`plan_folding` (same arguments)."""
    return plan_folding(graph, budget, target_ii, max_luts, margin, fallback_margin)["folding"]
