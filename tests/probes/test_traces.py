"""Traces: columns, outputs, de-duplication, exceptions kept as data."""

import numpy as np
import pytest

from probes import ErrorInfo, InvalidArgument, NonReplayable, Traces


def f(a: float, b: int = 2) -> float:
    if a < 0:
        raise ValueError("negative")
    return a * b


class Custom(Exception):
    pass


def test_from_calls_keeps_outputs_and_errors():
    traces = Traces.from_calls(f, [{"a": 1.0, "b": 2}, {"a": -1.0, "b": 2}])
    assert traces.outputs == [2.0, None]
    assert traces.errors[0] is None and traces.errors[1] == ErrorInfo("ValueError", "negative")
    assert traces.function.endswith(":f") and len(traces.source_hash) == 16
    assert list(traces.raised) == [False, True]
    assert all(d is not None and d >= 0 for d in traces.durations)


def test_arrays_and_columns():
    traces = Traces.from_calls(f, [{"a": 1.0, "b": 2}, {"a": -1.0, "b": 3}, {"a": 2.0, "b": 4}])
    columns, outputs = traces.to_arrays()
    np.testing.assert_array_equal(columns["a"], [1.0, -1.0, 2.0])
    assert np.isnan(outputs[1]) and outputs[2] == 8.0


def test_label_and_vector_outputs():
    labels = Traces([{"x": 1}, {"x": 2}], ["a", "b"])
    assert labels.output_array().dtype == object
    vectors = Traces([{"x": 1}, {"x": 2}], [(1.0, 2.0), (3.0, 4.0)])
    assert vectors.output_array().shape == (2, 2)


def test_deduplicate_keeps_first_of_identical_inputs():
    traces = Traces([{"a": 1.0}, {"a": 1.0}, {"a": float("nan")}, {"a": float("nan")}, {"a": [1, 2]}],
                    [1, 1, 2, 2, 3])
    assert len(traces.deduplicate()) == 3


def test_error_info_resolves_classes():
    assert ErrorInfo.from_exception(KeyError("k")).exception_class() is KeyError
    info = ErrorInfo.from_exception(Custom("boom"))
    assert info.type.endswith("test_traces.Custom") and info.name == "Custom"
    assert info.exception_class() is Custom
    assert ErrorInfo("nowhere.Missing", "x").exception_class() is RuntimeError


def test_length_mismatch_is_reported():
    with pytest.raises(InvalidArgument, match="outputs"):
        Traces([{"a": 1}], [])


def test_replayable_mask_and_parquet(tmp_path):
    traces = Traces([{"a": 1.0}, {"a": NonReplayable("Socket", "<socket>")}], [1.0, 2.0])
    assert list(traces.replayable) == [True, False]
    path = tmp_path / "t.parquet"
    traces.to_parquet(str(path))
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assert table.num_rows == 2 and "output" in table.column_names


def test_slicing_and_concatenation():
    traces = Traces.from_calls(f, [{"a": float(i)} for i in range(5)])
    assert len(traces[1:3]) == 2 and traces[0].output == 0.0
    assert len(traces + traces) == 10


def positional_only(x, /, y=1.0):
    if x < 0:
        raise ValueError("negative")
    return x * y


def test_positional_only_parameters_are_called_by_position():
    from probes import Schema, call_with_path, verify

    traces = Traces.from_calls(positional_only, [{"x": 2.0, "y": 3.0}, {"x": -1.0}])
    assert traces.outputs == [6.0, None] and traces.errors[1].type == "ValueError"
    assert call_with_path(positional_only, {"x": 2.0, "y": 2.0}).output == 4.0
    schema = Schema.from_function(positional_only, x=(-1.0, 1.0), y=(0.0, 2.0))
    assert schema.output.kind == "real" and schema.output.error_types == ("ValueError",)
    report = verify(positional_only, positional_only, schema=schema, max_examples=30, min_examples=30, budget_s=5)
    assert report.passed


class Holder:
    class NestedError(KeyError):
        pass


def test_error_info_finds_nested_classes_but_imports_nothing():
    import sys

    info = ErrorInfo.from_exception(Holder.NestedError("k"))
    assert info.exception_class() is Holder.NestedError
    name = "ns_never_imported_traces_mod"
    assert ErrorInfo(f"{name}.Boom", "x").exception_class() is RuntimeError and name not in sys.modules
    for odd in ("__import__", "builtins.__import__", "os.system", "json.JSONDecodeError.__class__", "", "a..b"):
        assert ErrorInfo(odd, "x").exception_class() is RuntimeError, odd
    assert ErrorInfo("json.JSONDecodeError", "x").exception_class().__name__ == "JSONDecodeError"
    with pytest.raises(InvalidArgument, match="trusted_modules="):
        ErrorInfo("x.Y", "m").exception_class(trusted_modules="x")


def test_skipped_count_travels_with_the_traces():
    traces = Traces([{"a": 1}, {"a": 2}], [1, 2], skipped=3)
    assert traces.skipped == 3 and traces[:1].skipped == 3 and traces.subset([1]).skipped == 3
    assert (traces + Traces([{"a": 3}], [3])).skipped == 3 and (traces + traces).skipped == 6
    assert Traces([{"a": 1}], [1]).skipped == 0 and Traces.empty().skipped == 0
    assert traces == Traces([{"a": 1}, {"a": 2}], [1, 2])  # a count of lost rows is not part of the value
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(InvalidArgument, match="skipped"):
            Traces([], [], skipped=bad)
