"""bench/guard_trip.py: the call-by-call and the vectorised simulations of the live audit agree."""

from __future__ import annotations

from bench.guard_trip import detection_study


def test_class_and_vector_engines_agree_on_detection():
    common = dict(max_error_rate=0.01, audit_rate=0.05, wrong_rate=0.3, served_calls=500, streams=300, seed=1)
    by_class = detection_study(engine="class", **common)
    by_vector = detection_study(engine="vector", **common)
    assert by_class["detected_within_500"] >= 0.93 and by_vector["detected_within_500"] >= 0.93
    assert abs(by_class["median_delay_audits"] - by_vector["median_delay_audits"]) <= 2
    assert abs(by_class["median_delay_calls"] - by_vector["median_delay_calls"]) <= 50


def test_a_never_wrong_stream_never_trips_and_reports_no_median():
    result = detection_study(0.01, 0.05, 0.0, 20_000, 20, engine="vector")
    assert result["tripped_share"] == 0.0 and result["median_delay_calls"] is None
