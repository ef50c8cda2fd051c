"""probes: observe a legacy function (record traces), describe its inputs (schema), and
judge any candidate against it (equivalence, edge cases).

Imports nothing from `replace` or `explain`.
"""

from ._errors import (
    CorruptStoreError,
    InvalidArgument,
    MissingDependencyError,
    NeuroswapError,
    NotFittedError,
    OutOfDomainError,
    SchemaError,
    StoreError,
    SurrogateFileError,
    VerificationError,
)
from ._identity import function_name, resolve, source_hash
from ._paths import PathCall, call_with_path, paths_of
from ._schema import Field, OutputSpec, Schema
from ._strategy import strategy
from ._tolerance import Tolerance
from ._traces import ErrorInfo, NonReplayable, Redacted, Trace, Traces
from ._compare import EXCEPTION_MODES, NAN_MODES, Comparison, Verdict
from ._report import Counterexample, EquivalenceReport, ViewStats
from ._verify import verify
from ._mining import EdgeCase, EdgeCases, mine_edge_cases
from ._pytest_writer import write_pytest
from ._record import RecorderStats, record
from ._store import FunctionSummary, MixedVersionsWarning, TraceStore
from ._store_memory import MemoryStore
from ._store_sqlite import SQLiteStore
from ._store_postgres import PostgresStore
from ._retention import StoreStats

__all__ = [
    "Comparison",
    "Counterexample",
    "EXCEPTION_MODES",
    "EdgeCase",
    "EdgeCases",
    "EquivalenceReport",
    "NAN_MODES",
    "Verdict",
    "ViewStats",
    "mine_edge_cases",
    "verify",
    "write_pytest",
    "FunctionSummary",
    "MemoryStore",
    "MixedVersionsWarning",
    "RecorderStats",
    "SQLiteStore",
    "PostgresStore",
    "StoreStats",
    "TraceStore",
    "record",
    "CorruptStoreError",
    "ErrorInfo",
    "Field",
    "InvalidArgument",
    "MissingDependencyError",
    "NeuroswapError",
    "NonReplayable",
    "NotFittedError",
    "OutOfDomainError",
    "OutputSpec",
    "PathCall",
    "Redacted",
    "Schema",
    "SchemaError",
    "StoreError",
    "SurrogateFileError",
    "Tolerance",
    "Trace",
    "Traces",
    "VerificationError",
    "call_with_path",
    "function_name",
    "paths_of",
    "resolve",
    "source_hash",
    "strategy",
]
