"""The public names of explain are pinned."""

import explain


def test_all_is_pinned() -> None:
    assert explain.__all__ == [
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
    for name in explain.__all__:
        assert getattr(explain, name) is not None


def test_importing_explain_does_not_import_the_optional_heavy_dependencies() -> None:
    import subprocess
    import sys

    code = "import sys, explain; print(sorted(m for m in ('shap', 'captum', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
