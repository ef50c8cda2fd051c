"""report(): a self-contained HTML page whose images all decode, and Markdown with PNGs beside it;
checked with a real (tiny) replace.fit surrogate, and in headless Chromium when it is installed."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from probes import Schema, Tolerance, Traces
import explain


def fee(weight: float, zone: str, express: bool) -> float:
    if weight <= 2.0:
        base = 5.0
    elif weight <= 10.0:
        base = 9.5
    else:
        base = 20.0
    if zone in ("EU", "NA"):
        base += 3.0
    return base + 4.0 if express else base


SCHEMA = Schema.from_function(fee, weight=(0.0, 30.0), zone=["DOM", "EU", "NA", "ROW"])


@pytest.fixture(scope="module")
def surrogate():
    import replace

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return replace.fit(fee, schema=SCHEMA, tolerance=Tolerance(abs=0.05), budget_s=8, seed=0, ensemble_size=2,
                           widths=(16,), depths=(2,), max_candidates=1, test_size=300, rounds=1)


@pytest.fixture(scope="module")
def built(surrogate, tmp_path_factory) -> Path:
    traces = Traces.from_calls(fee, SCHEMA.sample(150, seed=3))
    out = tmp_path_factory.mktemp("report")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return explain.report(fee, surrogate, traces=traces, out=out, n_eval=120, n_attribution=15,
                              verify_examples=60, timing_calls=50)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.headings: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)
            self._in_h2 = False


def _check_png(data: bytes) -> tuple[int, int]:
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()  # decodes every pixel (zlib stream included)
    assert image.width > 100 and image.height > 100
    return image.size


def test_html_is_self_contained_and_every_image_decodes(built: Path) -> None:
    text = (built / "report.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()
    assert len(page.images) >= 4
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        _check_png(base64.b64decode(src.split(",", 1)[1], validate=True))
    assert not re.search(r'(src|href)="(http|//|file:)', text)  # nothing outside the file
    for heading in ("Summary", "Error distribution", "Response curves", "Attributions", "Distilled rules",
                    "Worst counterexamples", "Training", "Manifest"):
        assert heading in page.headings


def test_markdown_references_pngs_that_exist(built: Path) -> None:
    md = (built / "report.md").read_text(encoding="utf-8")
    names = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {"errors.png", "response_curves.png", "attributions.png", "training_curve.png"} <= set(names)
    for name in names:
        _check_png((built / name).read_bytes())


def test_report_states_the_measured_figures(built: Path, surrogate) -> None:
    md = (built / "report.md").read_text(encoding="utf-8")
    assert "probes.verify: domain" in md and "probes.verify: operational" in md
    assert "invocation rate" in md
    assert "original, per call" in md and "surrogate, per call" in md
    assert "def fee(weight: float, zone: str, express: bool)" in md
    assert "| teacher | domain |" in md and "| original | domain |" in md
    assert all(f'"{key}"' in md for key in surrogate.manifest)  # the manifest


def test_report_with_given_verification_and_rules(surrogate, tmp_path) -> None:
    from probes import verify

    report = verify(fee, surrogate, schema=SCHEMA, max_examples=40, seed=0, search=False, database=None)
    rules = explain.distill(fee, schema=SCHEMA, max_leaves=12, n_samples=600, tolerance=Tolerance(abs=1e-9),
                            fidelity_samples=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = explain.report(fee, surrogate, out=tmp_path / "r", verification=report, rules=rules, n_eval=60,
                             n_attribution=8, timing_calls=20)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "weight <= 2.0" in md and f"Rules distilled from {rules.teacher}" in md


def test_attribute_and_distill_work_on_a_real_surrogate(surrogate) -> None:
    inputs = SCHEMA.sample(12, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ig = explain.attribute(surrogate, inputs, ig_steps=(50, 100))
        ablation = explain.attribute(surrogate, inputs, method="ablation")
    assert ig.values.shape == (12, 3) and ig.delta is not None and ig.n_steps in (50, 100)
    assert ablation.importance()["weight"] > 0
    rules = explain.distill(surrogate, original=fee, max_leaves=8, n_samples=600, fidelity_samples=200)
    assert set(rules.fidelity) == {"teacher:domain", "original:domain"}
    assert all(f.method == "probes.verify" and f.n == 200 for f in rules.fidelity.values())


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed")
def test_report_renders_in_headless_chromium(built: Path, tmp_path) -> None:
    url = (built / "report.html").resolve().as_uri()
    flags = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    match = re.search(r'<body[^>]*data-images-ok="(\w+)"', dom.stdout)
    assert match and match.group(1) == "yes", dom.stdout[:500]
    count = re.search(r'data-images="(\d+)"', dom.stdout)
    assert count and int(count.group(1)) >= 4
    shot = tmp_path / "shot.png"
    run = subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1200,3000", url],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    from PIL import Image

    image = Image.open(shot).convert("L")
    assert image.size == (1200, 3000)
    pixels = np.asarray(image)
    assert pixels.std() > 10  # not a blank page
