"""explain: what a surrogate learned, as attributions, distilled rules and plain Python, and a
report a reviewer can open from disk.

Imports `probes` and `replace`, never the other way round. SHAP, Captum and matplotlib are
imported lazily (the `explain` extra).
"""

from ._attributions import Attribution, attribute
from ._compare import AttributionComparison, compare_attributions
from ._report import report
from ._rules import Complexity, Cut, Fidelity, FidelityTable, Rules, distill, fidelity_table

__all__ = [
    "Attribution",
    "AttributionComparison",
    "Complexity",
    "Cut",
    "Fidelity",
    "FidelityTable",
    "Rules",
    "attribute",
    "compare_attributions",
    "distill",
    "fidelity_table",
    "report",
]
