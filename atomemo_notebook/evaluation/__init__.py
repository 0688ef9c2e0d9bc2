"""Batch evaluation: a workflow asked over a DataFrame, one table of what happened."""

from ._api import compare, compare_nodes, evaluate, load_evaluation
from ._cache import CacheWarning
from ._comparison import Comparison
from ._dataset import demo_dataset
from ._results import EvalResults
from ._scorers import contains, exact, latency_under, regex

__all__ = ["CacheWarning", "Comparison", "EvalResults", "compare", "compare_nodes", "contains", "demo_dataset",
           "evaluate", "exact", "latency_under", "load_evaluation", "regex"]
