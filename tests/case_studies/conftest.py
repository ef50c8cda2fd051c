"""case_studies/ is imported from the repository root (it is not in the wheel): put the root on
sys.path so plain `pytest` finds it as well as `python -m pytest`."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
