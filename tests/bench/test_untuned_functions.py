"""bench/untuned_functions.py (issue 16): at least 12 functions of every kind, each running on its
production generator's inputs, those inputs inside the declared schema (and not uniform: skewed
traffic), outputs deterministic and of the declared output kind. No fits here."""

from __future__ import annotations

import pytest

from bench.untuned_functions import FUNCTIONS
from probes import Traces


def test_at_least_twelve_functions_of_every_kind():
    assert len(FUNCTIONS) >= 12
    kinds = {entry.kind for entry in FUNCTIONS.values()}
    assert kinds == {"kernel", "table", "solver", "classifier"}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_runs_on_its_inputs_inside_the_schema(name):
    entry = FUNCTIONS[name]
    schema = entry.schema()
    rows = entry.generate(300, seed=100)
    assert len(rows) == 300
    assert rows == entry.generate(300, seed=100)  # the generator is seeded
    assert rows != entry.generate(300, seed=101)
    for row in rows:
        ok, reason = schema.contains(row)
        assert ok, f"{name}: {row} {reason}"
    first = Traces.from_calls(entry.function, rows)
    again = Traces.from_calls(entry.function, rows)
    assert list(first.outputs) == list(again.outputs)
    assert [e and e.type for e in first.errors] == [e and e.type for e in again.errors]
    assert sum(e is None for e in first.errors) >= 0.9 * len(rows)  # production traffic mostly valid
    for error in first.errors:
        assert error is None or error.type == "ValueError"
    if schema.output.kind == "label":
        labels = set(schema.output.labels)
        assert {o for o, e in zip(first.outputs, first.errors) if e is None} <= labels
    else:
        assert schema.output.kind in ("real", "vector")
