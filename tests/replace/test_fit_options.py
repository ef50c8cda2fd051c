"""fit's options in two tiers: the few a user sets are fit's own arguments; the rest live in one
advanced-options object (`FitOptions`), and each still works as a keyword argument as before."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from probes import InvalidArgument, Schema, Tolerance
from replace import FitConfig, FitOptions, fit

from conftest import smooth

SCHEMA = Schema.from_function(smooth, x=(0.0, 1.0), y=(0.0, 1.0))


def small_fit(**kwargs):
    return fit(smooth, schema=SCHEMA, tolerance=Tolerance(abs=0.05), budget_s=1.0, seed=0, progress=False,
               **kwargs)


def test_fit_names_the_few_a_user_sets_and_takes_the_rest_in_one_object():
    parameters = inspect.signature(fit).parameters
    for name in ("traces", "schema", "tolerance", "oracle", "budget_s", "seed", "progress", "advanced"):
        assert name in parameters
    assert FitOptions is FitConfig  # one class, the old name kept
    assert "advanced" in fit.__doc__ and "FitOptions" in fit.__doc__


def test_advanced_object_and_keywords_give_the_same_surrogate():
    options = dict(widths=(16,), depths=(2,), ensemble_size=1, rounds=0, exact="off", budget_clock="work")
    by_keyword = small_fit(**options)
    by_object = small_fit(advanced=FitOptions(**options))
    mixed = small_fit(advanced=FitOptions(widths=(16,), depths=(2,), ensemble_size=1), rounds=0, exact="off",
                      budget_clock="work")
    for other in (by_object, mixed):
        assert other.manifest["hyperparameters"] == by_keyword.manifest["hyperparameters"]
        a, b = by_keyword.weights.tensors(), other.weights.tensors()
        assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_an_option_set_both_ways_is_refused_by_name():
    with pytest.raises(InvalidArgument, match="rounds") as raised:
        small_fit(advanced=FitOptions(rounds=0), rounds=2)
    assert "advanced=" in str(raised.value) and "one place" in str(raised.value)
    # the same value both ways says the same thing: accepted (checked, not fitted)
    from replace._fit_config import merged_options

    assert merged_options(FitOptions(rounds=0), {"rounds": 0})["rounds"] == 0


def test_advanced_must_be_a_fit_options():
    with pytest.raises(InvalidArgument, match="advanced") as raised:
        small_fit(advanced={"rounds": 0})
    assert "FitOptions" in str(raised.value)


def test_unknown_options_are_refused_by_name_with_the_list():
    with pytest.raises(InvalidArgument, match="widht") as raised:
        small_fit(widht=3)
    assert "Options are:" in str(raised.value) and "widths" in str(raised.value)


def test_options_in_the_object_are_checked_like_keywords():
    with pytest.raises(InvalidArgument, match="search"):
        small_fit(advanced=FitOptions(search="grid"))
    with pytest.raises(InvalidArgument, match="ensemble_size"):
        small_fit(advanced=FitOptions(ensemble_size=0))


def test_every_advanced_option_is_documented_where_it_is_declared():
    source = (Path(__import__("replace").__file__).parent / "_fit_config.py").read_text()
    for f in fields(FitOptions):
        line = re.search(rf"^    {f.name}: .*$", source, re.M)
        assert line is not None and "#" in line.group(0), f"{f.name} has no comment in FitConfig"
