"""Parquet export of a trace store and reading it back: layout, readers, ranks, safety, errors."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.dataset as ds  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from probes import (  # noqa: E402
    ErrorInfo,
    InvalidArgument,
    MemoryStore,
    MissingDependencyError,
    NonReplayable,
    Redacted,
    TraceStore,
    Traces,
    function_name,
    source_hash,
)
from probes import _encoding  # noqa: E402
from probes._parquet import MARKER  # noqa: E402
from probes._parquet_read import rank_files, split_parts  # noqa: E402
from probes._store import SkippedTracesWarning, TraceRecord, encode_inputs  # noqa: E402

DAY = 86_400.0
T0 = 1_779_926_400.0 + 60.0  # 2026-05-28 00:01 UTC: three days of calls from here


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def fee(amount: float, kind: str = "std", count: int = 1) -> float:
    if amount < 0:
        raise ValueError(f"negative amount {amount}")
    return amount * (2.0 if kind == "express" else 1.0) + count


def make_nested() -> Callable[..., Any]:
    def nested(colour: Colour, when: dt.date, pair: tuple[int, int], note: Any) -> str:
        return f"{colour.value}-{when.isoformat()}-{sum(pair)}"

    return nested


NESTED = make_nested()


def _records(fn: Callable[..., Any], calls: list[dict[str, Any]], start: float, step: float) -> list[TraceRecord]:
    """The rows `@record` would write for these calls (timestamps chosen, so days are known)."""
    name, version = function_name(fn), source_hash(fn)
    rows = []
    for i, kwargs in enumerate(calls):
        try:
            output, error = fn(**kwargs), None
        except Exception as exc:
            output, error = None, ErrorInfo.from_exception(exc)
        rows.append(TraceRecord(name, version, encode_inputs(kwargs), None if error else _encoding.dumps(output),
                                error and error.type, error and error.message, 0.001 * (i + 1), start + i * step))
    return rows


def _fee_calls(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [{"amount": float(np.round(a, 3)), "kind": ["std", "express"][int(k)], "count": int(c)}
            for a, k, c in zip(rng.uniform(-2, 10, n), rng.integers(0, 2, n), rng.integers(0, 5, n))]


def _nested_calls() -> list[dict[str, Any]]:
    return [{"colour": Colour.RED, "when": dt.date(2026, 1, 2), "pair": (1, 2), "note": None},
            {"colour": Colour.BLUE, "when": dt.date(2026, 3, 4), "pair": (5, -1), "note": math.inf},
            {"colour": Colour.RED, "when": dt.date(2026, 5, 6), "pair": (0, 0), "note": NonReplayable("Lock", "<lock>")},
            {"colour": Colour.BLUE, "when": dt.date(2026, 7, 8), "pair": (2, 2), "note": Redacted("ab12")}]


def _fill(store: TraceStore, n: int = 90) -> TraceStore:
    store.add(_records(fee, _fee_calls(n), T0, 3 * DAY / n))  # spread over three UTC days
    store.add(_records(NESTED, _nested_calls(), T0 + 0.5 * DAY, 60.0))
    return store


@pytest.fixture
def store(any_store: TraceStore) -> TraceStore:
    """Every backend in turn (memory, SQLite, PostgreSQL where its server can run), filled."""
    return _fill(any_store)


def _same(a: Traces, b: Traces) -> None:
    assert len(a) == len(b) > 0
    assert a.inputs == b.inputs
    assert a.outputs == b.outputs
    assert a.errors == b.errors
    assert a.function == b.function and a.source_hash == b.source_hash
    assert a.durations == b.durations
    assert np.allclose(np.array(a.timestamps, dtype=float), np.array(b.timestamps, dtype=float), atol=1e-6, rtol=0)


# -- round trip -----------------------------------------------------------------------------------
def test_round_trip_gives_what_the_store_loads(store: TraceStore, tmp_path: Path) -> None:
    result = store.export_parquet(tmp_path / "out")
    assert result.rows == {function_name(fee): 90, function_name(NESTED): 4} and result.total == 94
    for fn in (fee, NESTED):
        loaded = store.load(fn)
        by_callable = Traces.from_parquet(tmp_path / "out", function=fn)
        by_name = Traces.from_parquet(str(tmp_path / "out"), function_name(fn))
        _same(by_callable, loaded)
        _same(by_name, loaded)
    nested = Traces.from_parquet(tmp_path / "out", function=NESTED)
    assert nested.inputs[0]["colour"] is Colour.RED and nested.inputs[1]["pair"] == (5, -1)
    assert nested.inputs[2]["note"] == NonReplayable("Lock", "<lock>") and nested.inputs[3]["note"] == Redacted("ab12")
    errors = Traces.from_parquet(tmp_path / "out", function=fee).errors
    assert any(e is not None and e.type == "ValueError" and e.message.startswith("negative") for e in errors)


def test_from_parquet_versions_and_dedupe_follow_load(tmp_path: Path) -> None:
    store = MemoryStore()
    rows = _records(fee, _fee_calls(10), T0, 60.0)
    store.add(rows + rows[:3] + [row._replace(source_hash="old0000000000000") for row in rows[:4]])
    store.export_parquet(tmp_path / "out")
    assert len(Traces.from_parquet(tmp_path / "out", fee)) == 10  # current version, de-duplicated
    assert len(Traces.from_parquet(tmp_path / "out", fee, dedupe=False)) == 13
    assert len(Traces.from_parquet(tmp_path / "out", fee, source_hash="*")) == 14
    assert len(Traces.from_parquet(tmp_path / "out", fee, source_hash="old0000000000000")) == 4
    with pytest.warns(UserWarning, match="2 source versions"):
        assert len(Traces.from_parquet(tmp_path / "out", function_name(fee))) == 14
    assert len(Traces.from_parquet(tmp_path / "out", "other.module:nothing")) == 0


# -- layout and other readers ----------------------------------------------------------------------
def test_layout_is_hive_partitioned_and_pyarrow_reads_it(store: TraceStore, tmp_path: Path) -> None:
    result = store.export_parquet(tmp_path / "out")
    folders = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir())
    assert all(name.startswith("function=") for name in folders)
    assert sorted(unquote(name[len("function="):]) for name in folders) == sorted(result.rows)
    assert all("<" not in name and ":" not in name for name in folders)  # escaped, reversibly
    days = sorted(p.name for p in (tmp_path / "out" / folders[0]).iterdir())
    assert days == ["day=2026-05-28", "day=2026-05-29", "day=2026-05-30"]
    assert all(f.startswith("function=") and "/day=" in f and f.endswith(".parquet") for f in result.files)
    marker = json.loads((tmp_path / "out" / MARKER).read_text())
    assert marker["partition_by"] == ["function", "day"] and marker["rows"] == result.rows

    table = ds.dataset(tmp_path / "out", partitioning="hive").to_table()
    assert table.num_rows == 94
    counts: dict[str, int] = {}
    for name in table.column("function").to_pylist():
        counts[name] = counts.get(name, 0) + 1
    assert counts == result.rows
    schema = table.schema
    assert schema.field("inputs").type.field("amount").type == pa.float64()
    assert schema.field("inputs").type.field("count").type == pa.int64()
    assert schema.field("inputs").type.field("kind").type == pa.string()
    assert schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    fees = table.filter(ds.field("function") == function_name(fee))
    assert sorted(fees.column("inputs").combine_chunks().field("amount").to_pylist()) == \
        sorted(c["amount"] for c in _fee_calls(90))


def test_duckdb_reads_the_dataset(store: TraceStore, tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    store.export_parquet(tmp_path / "out")
    rows = duckdb.sql(
        f"SELECT function, count(*), sum(inputs.count), count(error_type) "
        f"FROM read_parquet('{tmp_path / 'out'}/**/*.parquet', hive_partitioning = true) "
        f"WHERE function = '{function_name(fee)}' GROUP BY function").fetchall()
    calls = _fee_calls(90)
    assert rows == [(function_name(fee), 90, sum(c["count"] for c in calls), sum(c["amount"] < 0 for c in calls))]
    days = duckdb.sql(f"SELECT DISTINCT day FROM read_parquet('{tmp_path / 'out'}/**/*.parquet', "
                      "hive_partitioning = true) ORDER BY day").fetchall()
    assert [str(d[0]) for d in days] == ["2026-05-28", "2026-05-29", "2026-05-30"]


@pytest.mark.parametrize("partition_by", [(), ("day",), ("source_hash", "function")])
def test_other_partitionings_keep_the_rest_as_columns(partition_by: tuple[str, ...], tmp_path: Path) -> None:
    store = _fill(MemoryStore())
    result = store.export_parquet(tmp_path / "out", partition_by=partition_by)
    for fn in (fee, NESTED):
        _same(Traces.from_parquet(tmp_path / "out", fn), store.load(fn))
    table = ds.dataset(tmp_path / "out", partitioning="hive").to_table()
    assert table.num_rows == result.total
    assert {"function", "source_hash"} <= set(table.column_names)


def test_a_function_without_arguments_exports(tmp_path: Path) -> None:
    def constant() -> int:
        return 7

    store = MemoryStore()
    store.add(_records(constant, [{}, {}], T0, 1.0))
    store.export_parquet(tmp_path / "out", function=constant)
    back = Traces.from_parquet(tmp_path / "out", constant, dedupe=False)
    assert back.inputs == [{}, {}] and back.outputs == [7, 7]


def test_mixed_kinds_become_text_and_stay_exact_in_json(tmp_path: Path) -> None:
    store = MemoryStore()
    store.add(_records(fee, [{"amount": 1.0, "kind": "std", "count": 1},
                             {"amount": 2, "kind": "std", "count": "two"},
                             {"amount": 3.5, "kind": None, "count": 2**70}], T0, 1.0))
    store.export_parquet(tmp_path / "out", partition_by=("function",))
    table = ds.dataset(tmp_path / "out", partitioning="hive").to_table()
    inputs = table.column("inputs").combine_chunks()
    assert inputs.type.field("amount").type == pa.float64()  # ints with floats are floats
    assert inputs.field("count").to_pylist() == ["1", "two", str(2**70)]
    back = Traces.from_parquet(tmp_path / "out", fee)
    assert [kw["count"] for kw in back.inputs] == [1, "two", 2**70] and back.inputs[1]["amount"] == 2


# -- exporting twice -------------------------------------------------------------------------------
def test_exporting_twice_is_refused_or_replaces(tmp_path: Path) -> None:
    store = _fill(MemoryStore())
    first = store.export_parquet(tmp_path / "out")
    with pytest.raises(InvalidArgument, match="is not empty.*overwrite=True"):
        store.export_parquet(tmp_path / "out")
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.parquet")) == \
        sorted(first.files)  # the refused export touched nothing
    store.add(_records(fee, _fee_calls(5, seed=7), T0 + 2.5 * DAY, 60.0))
    second = store.export_parquet(tmp_path / "out", overwrite=True)
    assert second.rows[function_name(fee)] == 95  # replaced, not appended: nothing twice, nothing lost
    assert len(Traces.from_parquet(tmp_path / "out", fee, dedupe=False)) == 95
    assert not set(first.files) & set(second.files)  # part files are named by run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old folder left


def test_overwrite_never_deletes_other_files(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(InvalidArgument, match="not a neuroswap Parquet export"):
        _fill(MemoryStore()).export_parquet(tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_an_export_into_an_empty_folder_works(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert _fill(MemoryStore()).export_parquet(tmp_path / "empty", function=fee).rows == {function_name(fee): 90}


# -- ranks -----------------------------------------------------------------------------------------
def test_ranks_read_disjoint_files_that_cover_everything(tmp_path: Path) -> None:
    store = _fill(MemoryStore(), n=200)
    result = store.export_parquet(tmp_path / "out", rows_per_file=17)
    everything = [f for f in result.files if unquote(f).startswith(f"function={function_name(fee)}/")]
    assert len(everything) > 10
    full = Traces.from_parquet(tmp_path / "out", fee, dedupe=False)
    for world in (1, 2, 3, 5, len(everything) + 2):
        shares = [rank_files(tmp_path / "out", fee, rank, world) for rank in range(world)]
        assert sorted(f for share in shares for f in share) == sorted(everything)  # disjoint and covering
        again = [rank_files(tmp_path / "out", fee, rank, world) for rank in range(world)]
        assert again == shares  # deterministic
        parts = [Traces.from_parquet(tmp_path / "out", fee, rank=rank, world_size=world, dedupe=False)
                 for rank in range(world)]
        assert sum(len(p) for p in parts) == len(full) == 200
        read = sorted(json.dumps(encode_inputs(kw)) for p in parts for kw in p.inputs)
        assert read == sorted(json.dumps(encode_inputs(kw)) for kw in full.inputs)


def test_split_balances_rows() -> None:
    shares = split_parts(["a", "b", "c", "d"], [100, 50, 30, 20], 2)
    assert shares == [[0], [1, 2, 3]]
    assert split_parts([], [], 3) == [[], [], []]


# -- safety ----------------------------------------------------------------------------------------
def _crafted(folder: Path, rows: list[dict[str, Any]]) -> None:
    part = folder / f"function={'evil.mod%3Ahandler'}" / "day=2026-05-28"
    part.mkdir(parents=True)
    table = pa.table({
        "inputs_json": [r["inputs"] for r in rows],
        "output_json": [r.get("output") for r in rows],
        "error_type": [r.get("error_type") for r in rows],
        "error_message": [r.get("error_message") for r in rows],
        "source_hash": ["h" for _ in rows],
    })
    pq.write_table(table, part / "part-00000.parquet")


def test_a_crafted_file_imports_and_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[Any] = []
    monkeypatch.setattr(os, "system", lambda *a, **k: ran.append(a))
    assert "antigravity" not in sys.modules and "neuroswap_never_imported" not in sys.modules
    marker = tmp_path / "ran"
    rows = [
        {"inputs": json.dumps({"x": {"$dc": ["os:system", {"command": f"touch {marker}"}, "r"]}}), "output": "1"},
        {"inputs": json.dumps({"x": {"$e": ["antigravity:Fly", "UP", 1, "Fly.UP"]}}), "output": "2"},
        {"inputs": json.dumps({"x": {"$nt": ["neuroswap_never_imported:T", [1, 2], "T(1, 2)"]}}),
         "output": json.dumps({"$dc": ["builtins:eval", {"source": "1"}, "e"]})},
        {"inputs": json.dumps({"x": 3}), "error_type": "os.system", "error_message": "boom"},
        {"inputs": "{not json"},
    ]
    _crafted(tmp_path / "evil", rows)
    with pytest.warns(SkippedTracesWarning, match="1 exported trace"):
        traces = Traces.from_parquet(tmp_path / "evil", "evil.mod:handler", trusted_modules=())
    assert len(traces) == 4 and traces.skipped == 1
    assert isinstance(traces.inputs[0]["x"], NonReplayable) and traces.inputs[0]["x"].repr == "r"
    assert isinstance(traces.inputs[1]["x"], NonReplayable)
    assert isinstance(traces.inputs[2]["x"], NonReplayable) and isinstance(traces.outputs[2], NonReplayable)
    assert traces.errors[3] == ErrorInfo("os.system", "boom") and traces.errors[3].exception_class() is RuntimeError
    assert "antigravity" not in sys.modules and "neuroswap_never_imported" not in sys.modules
    assert ran == [] and not marker.exists()


def test_a_parquet_file_that_is_not_an_export_is_named(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "other" / "data.parquet")
    with pytest.raises(Exception, match="no inputs_json column"):
        Traces.from_parquet(tmp_path / "other", "m:f")


# -- bad arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"partition_by": ("function", "hour")}, r"partition_by=.*'hour' is not a partition key"),
    ({"partition_by": "function"}, r"partition_by='function' : must be a tuple of keys.*\('function',\)"),
    ({"partition_by": ("day", "day")}, "names a key twice"),
    ({"function": "no_colon"}, "must be a function or 'module:qualname'"),
    ({"function": "other.module:missing"}, "has no traces in this store"),
    ({"overwrite": "yes"}, "overwrite='yes' : must be True or False"),
    ({"rows_per_file": 0}, "rows_per_file=0 : must be an integer >= 1"),
])
def test_bad_export_arguments_are_named(kwargs: dict[str, Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=message):
        _fill(MemoryStore()).export_parquet(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgument, match="is a file, not a folder"):
        _fill(MemoryStore()).export_parquet(tmp_path / "file")
    with pytest.raises(InvalidArgument, match="is a file"):
        Traces.from_parquet(tmp_path / "file", fee)


@pytest.mark.parametrize("kwargs, message", [
    ({"rank": 0}, "world_size=None : must be given with rank"),
    ({"world_size": 2}, "rank=None : must be given with world_size"),
    ({"rank": 2, "world_size": 2}, r"rank=2 : must be an integer in \[0, 2\)"),
    ({"rank": 0, "world_size": 0}, "world_size=0 : must be an integer >= 1"),
    ({"source_hash": 5}, "source_hash=5"),
])
def test_bad_read_arguments_are_named(kwargs: dict[str, Any], message: str, tmp_path: Path) -> None:
    _fill(MemoryStore()).export_parquet(tmp_path / "out")
    with pytest.raises(InvalidArgument, match=message):
        Traces.from_parquet(tmp_path / "out", fee, **kwargs)


def test_missing_folder_or_dataset_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="does not exist.*export_parquet"):
        Traces.from_parquet(tmp_path / "nowhere", fee)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgument, match="holds no .parquet files"):
        Traces.from_parquet(tmp_path / "empty", fee)


def test_missing_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingDependencyError, match=r"neuroswap\[parquet\]"):
        _fill(MemoryStore()).export_parquet(tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- training --------------------------------------------------------------------------------------
def smooth(x: float, y: float) -> float:
    return 0.5 * x + 0.25 * y * y


def test_fit_trains_from_parquet(tmp_path: Path) -> None:
    from probes import Tolerance
    from replace import fit

    rng = np.random.default_rng(0)
    store = MemoryStore()
    store.add(_records(smooth, [{"x": float(a), "y": float(b)} for a, b in rng.uniform(0, 1, (300, 2))], T0, 600.0))
    store.export_parquet(tmp_path / "out")
    traces = Traces.from_parquet(tmp_path / "out", smooth)
    assert len(traces) == 300
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        surrogate = fit(smooth, traces, oracle=False, budget_s=2, seed=0, progress=False, exact="off",
                        tolerance=Tolerance(abs=0.05), ensemble_size=1, widths=(16,), depths=(1,))
    assert surrogate.schema.names == ["x", "y"] and surrogate.metrics.oracle_calls == 0
    assert np.isfinite(surrogate(x=0.5, y=0.5))


def test_fit_distributed_reads_a_parquet_folder_in_one_process(tmp_path: Path) -> None:
    from probes import Tolerance
    from replace._distributed import fit_distributed

    rng = np.random.default_rng(2)
    store = MemoryStore()
    store.add(_records(smooth, [{"x": float(a), "y": float(b)} for a, b in rng.uniform(0, 1, (120, 2))], T0, 60.0))
    store.export_parquet(tmp_path / "out")
    surrogate = fit_distributed(smooth, store=str(tmp_path / "out"), architecture="8x1x1", epochs=3, patience=3,
                                polish_steps=0, tolerance=Tolerance(abs=0.05), seed=0)
    assert surrogate.metrics.training_rows == 120


def _rank_worker(rank: int, world: int, init_file: str, folder: str, results: str) -> None:
    from probes import Tolerance
    from replace._distributed import fit_distributed, parameters_digest, process_group

    with process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world):
        surrogate = fit_distributed(smooth, store=folder, architecture="8x1x1", epochs=3, patience=3,
                                    polish_steps=0, tolerance=Tolerance(abs=0.05), seed=0)
        Path(results, f"{rank}.json").write_text(json.dumps({
            "digest": parameters_digest(surrogate), "rows": surrogate.metrics.training_rows,
            "per_rank": surrogate.manifest["distributed"]["rows_per_rank"]}))


@pytest.mark.slow
def test_fit_distributed_ranks_train_on_their_own_files(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    rng = np.random.default_rng(1)
    store = MemoryStore()
    for day, n in enumerate((100, 50, 30)):  # one file per day: rank 0 gets 100 rows, rank 1 gets 80
        calls = [{"x": float(a), "y": float(b)} for a, b in rng.uniform(0, 1, (n, 2))]
        store.add(_records(smooth, calls, T0 + day * DAY, 60.0))
    store.export_parquet(tmp_path / "out")
    assert [len(rank_files(tmp_path / "out", smooth, r, 2)) for r in (0, 1)] == [1, 2]
    results = tmp_path / "results"
    results.mkdir()
    mp.spawn(_rank_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "out"), str(results)), nprocs=2,
             join=True)
    ranks = [json.loads((results / f"{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["digest"] == ranks[1]["digest"]
    assert ranks[0]["rows"] == 180  # every row once, over both ranks
    assert ranks[0]["per_rank"] == 100  # split by file (rows i % 2 would give 90 each)
