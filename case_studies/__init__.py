"""Legacy functions taken through the neuroswap flow (not shipped in the wheel).

Each study module carries the legacy function (`FUNCTION`, under its own name too),
`generate_inputs(n, seed=0)`, `SPECS` for `probes.Schema.from_function(fn, **SPECS)`,
`TOLERANCE`, `NAME` and `DESCRIPTION`; the two AxBench studies add `axbench_error` and
`PUBLISHED`; insurance_class adds `OUTPUT` (pass it as `Schema.from_function(..., output=)`). The modules are cheap (stdlib + numpy), so they are imported eagerly.
"""

from __future__ import annotations

from types import ModuleType

from . import blackscholes, check_digit, insurance_class, inversek2j, loan_schedule, shipping_fee

STUDIES: dict[str, ModuleType] = {
    module.NAME: module
    for module in (blackscholes, inversek2j, shipping_fee, insurance_class, loan_schedule, check_digit)
}

__all__ = ["STUDIES"]
