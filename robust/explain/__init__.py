"""LRP relevance (Bach et al. 2015; Montavon et al. 2017) and seed 004's top-k relevant inputs.

``relevance(model, x)`` explains each input's predicted logit with the epsilon rule and the
bounded-input z^B rule (thesis Eq. 3.5) on the first layer; ``top_relevant(model, x, y)``
returns, per class, the k input indices with the highest mean relevance (seed 004's LRP loss).
"""

from robust.explain._lrp import relevance
from robust.explain._rules import EPS, FIRST_LAYER_RULES, LAYER_RULES, RULES
from robust.explain._topk import default_k, top_relevant

__all__ = [
    "EPS",
    "FIRST_LAYER_RULES",
    "LAYER_RULES",
    "RULES",
    "default_k",
    "relevance",
    "top_relevant",
]
