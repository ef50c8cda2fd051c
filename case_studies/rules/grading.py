"""Course letter grades from weighted component scores, as a school's gradebook assigns them.

The weighted score is shown to one decimal (and graded as shown), then looked up in the
grading scale; a final exam under 50 fails the course whatever the average.
"""

from __future__ import annotations

from typing import Any

import numpy as np

WEIGHTS = {"homework": 0.25, "midterm": 0.30, "final_exam": 0.35, "participation": 0.10}
# (lowest weighted score, grade), best first.
GRADE_SCALE = [
    (93.0, "A"), (90.0, "A-"), (87.0, "B+"), (83.0, "B"), (80.0, "B-"),
    (77.0, "C+"), (73.0, "C"), (70.0, "C-"), (60.0, "D"),
]
GRADES = [grade for _, grade in GRADE_SCALE] + ["F"]
FINAL_EXAM_MINIMUM = 50.0


def letter_grade(homework: float, midterm: float, final_exam: float, participation: float) -> str:
    """Letter grade of one student in one course."""
    scores = {"homework": homework, "midterm": midterm, "final_exam": final_exam, "participation": participation}
    for component, score in scores.items():
        if score < 0 or score > 100:
            raise ValueError(f"{component}={score}: scores are percentages from 0 to 100")

    if final_exam < FINAL_EXAM_MINIMUM:
        return "F"

    weighted = 0.0
    for component, weight in WEIGHTS.items():
        weighted += scores[component] * weight
    weighted = round(weighted, 1)

    for cutoff, grade in GRADE_SCALE:
        if weighted >= cutoff:
            return grade
    return "F"


LETTER_GRADE_SPECS: dict[str, Any] = {
    "homework": (0.0, 100.0),
    "midterm": (0.0, 100.0),
    "final_exam": (0.0, 100.0),
    "participation": (0.0, 100.0),
}


def letter_grade_inputs(n: int, seed: int = 0) -> list[dict]:
    """End-of-term gradebook: correlated scores (a student's ability plus noise), homework high,
    exam scores in half points, participation in whole points."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ability = rng.normal(76.0, 11.0)
        homework = float(np.clip(ability + 8 + rng.normal(0, 8), 0, 100))
        midterm = float(np.clip(ability + rng.normal(0, 9), 0, 100))
        final = float(np.clip(ability - 2 + rng.normal(0, 10), 0, 100))
        participation = float(np.clip(round(rng.normal(85, 12)), 0, 100))
        out.append({"homework": round(homework, 1), "midterm": round(midterm * 2) / 2,
                    "final_exam": round(final * 2) / 2, "participation": participation})
    return out


LETTER_GRADE_INVALID = [
    {"homework": 101.0, "midterm": 80.0, "final_exam": 80.0, "participation": 90.0},
    {"homework": 80.0, "midterm": -5.0, "final_exam": 80.0, "participation": 90.0},
]
