"""Pin the public names of `probes` and `replace`: a rename or removal breaks users (httpx's habit)."""

import probes
import replace

PROBES = ['Comparison', 'CorruptStoreError', 'Counterexample', 'EXCEPTION_MODES', 'EdgeCase', 'EdgeCases', 'EquivalenceReport', 'ErrorInfo', 'Field', 'FunctionSummary', 'InvalidArgument', 'MemoryStore', 'MissingDependencyError', 'MixedVersionsWarning', 'NAN_MODES', 'NeuroswapError', 'NonReplayable', 'NotFittedError', 'OutOfDomainError', 'OutputSpec', 'PathCall', 'PostgresStore', 'RecorderStats', 'Redacted', 'SQLiteStore', 'Schema', 'SchemaError', 'StoreError', 'StoreStats', 'SurrogateFileError', 'Tolerance', 'Trace', 'TraceStore', 'Traces', 'Verdict', 'VerificationError', 'ViewStats', 'call_with_path', 'function_name', 'mine_edge_cases', 'paths_of', 'record', 'resolve', 'source_hash', 'strategy', 'verify', 'write_pytest']

REPLACE = ['Architecture', 'BatchPrediction', 'Disagreement', 'FitConfig', 'FitOptions', 'GuardCalibration', 'OnePrediction', 'Surrogate', 'SurrogateMetrics', 'SwapStats', 'Swapped', 'TrainConfig', 'calibrate_guard', 'fit', 'fit_distributed', 'swap', 'train_model']

#: The contract of ../shared/DESIGN.md, which must never go missing.
DESIGN_NAMES = {
    "probes": ["record", "TraceStore", "Traces", "Schema", "Tolerance", "verify", "mine_edge_cases", "strategy"],
    "replace": ["fit", "Surrogate", "swap"],
}


def test_probes_exports_exactly_its_public_names():
    assert sorted(probes.__all__) == PROBES
    for name in probes.__all__:
        assert hasattr(probes, name), name


def test_replace_exports_exactly_its_public_names():
    assert sorted(replace.__all__) == REPLACE
    for name in replace.__all__:
        assert hasattr(replace, name), name


def test_design_contract_names_are_exported():
    for module in (probes, replace):
        for name in DESIGN_NAMES[module.__name__]:
            assert name in module.__all__, f"{module.__name__}.{name}"


def test_one_root_exception_for_the_family():
    import neuroswap

    assert neuroswap.NeuroswapError is probes.NeuroswapError
    for name in probes.__all__:
        obj = getattr(probes, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, probes.NeuroswapError), name
