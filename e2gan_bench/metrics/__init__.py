"""Metrics: every number a run reports, one registered object each (:mod:`.contract`, built-ins in :mod:`.builtin`).

Importing the package registers the built-in metrics; plugins come from the entry-point group
``e2gan_bench.metric`` or are registered with :func:`register_metric`.
"""

from e2gan_bench.metrics import builtin as _builtin  # noqa: F401  (registers the built-in metrics)
from e2gan_bench.metrics.contract import (
    METRICS,
    Backend,
    EvalContext,
    Metric,
    MetricUnavailable,
    Tolerance,
    all_metrics,
    cost_metrics,
    directions,
    format_number,
    headline_metrics,
    metric,
    register_metric,
)

__all__ = ["METRICS", "Backend", "EvalContext", "Metric", "MetricUnavailable", "Tolerance", "all_metrics",
           "cost_metrics", "directions", "format_number", "headline_metrics", "metric", "register_metric"]
