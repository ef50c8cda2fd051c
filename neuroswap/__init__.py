"""neuroswap: the command line and the version. The library lives in probes, replace, explain."""

from probes._errors import NeuroswapError

__version__ = "0.1.0"
__all__ = ["NeuroswapError", "__version__"]
