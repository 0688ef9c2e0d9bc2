"""Batch evaluation: a workflow asked over a DataFrame, one table of what happened."""

from .api import compare, compare_nodes, evaluate, load_evaluation
from .cache import CacheWarning
from .comparison import Comparison
from .dataset import demo_dataset
from .results import EvalResults
from .scorers import contains, exact, latency_under, regex

__all__ = ["CacheWarning", "Comparison", "EvalResults", "compare", "compare_nodes", "contains", "demo_dataset",
           "evaluate", "exact", "latency_under", "load_evaluation", "regex"]
