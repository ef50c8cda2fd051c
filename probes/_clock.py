"""The clock a budget is spent on (`fit`, and the searches of verify and mining): wall time, or
a deterministic count of work.

On a wall clock a busy machine buys fewer epochs and oracle calls in the same `budget_s`, so
one seed gives different surrogates under different load (a case-study table then moves by
several points between runs). The work clock instead charges each step a nominal cost computed
from what the step does: rows x parameters for a training step, Python lines executed for an
oracle call. The same seed and budget then give the same surrogate on any machine, at any load;
only the wall time it takes varies. The nominal costs were measured on an unloaded x86 core
(2026), so one work second is about one wall second there.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import sys
import time
from typing import Any, Callable, Iterator, Mapping

CLOCKS = ("wall", "work")

# nominal costs of the work clock (seconds); see `bench/work_clock.py` for how they compare
# with measured wall time on this machine
STEP_OVERHEAD_S = 2.5e-4      # one optimiser step of a small torch module (dispatch, AdamW)
PASS_OVERHEAD_S = 5e-5        # one forward pass without gradients
PER_ROW_PARAM_S = 1.2e-10     # forward + backward, per row and per parameter (forward alone: a third)
CALL_OVERHEAD_S = 5e-7        # one plain call of the legacy function
PER_LINE_S = 2.5e-8           # each Python line it executes
TRACED_CALL_OVERHEAD_S = 8e-5  # one branch-path-traced call (sys.settrace)
TRACED_PER_LINE_S = 8e-7
# verify and mining (probes): what they spend besides calls of Python functions
NUMPY_CALL_S = 2e-5           # one single call of a numpy-backed candidate (a replace.Surrogate)
NUMPY_ROW_S = 1e-6            # each row of a batched call of such a candidate (encoding, inference)
EXAMPLE_OVERHEAD_S = 1.5e-3   # one hypothesis example (generation, mutation, shrinking, bookkeeping):
                              # 1.4-3 ms of CPU measured per example in mining's and verify's searches


class WallClock:
    """Time as it passes: `charge` is a no-op because the work itself takes the time."""

    deterministic = False
    ceiling_hit = False  # the budget is wall time already: no ceiling
    wall_ceiling_s = None

    def now(self) -> float:
        return time.monotonic()

    def charge(self, seconds: float) -> None:
        return None


class WorkClock:
    """Time as nominal work: it moves only when a step is charged.

    `wall_ceiling_s`: a limit on the wall time of the run, for what the work clock cannot see
    (a function that sleeps or waits on I/O costs it almost nothing). Once that much wall time
    has passed since the clock was made, `now()` jumps `CEILING_JUMP_S` ahead, so every
    deadline the run checks has passed and it ends at its next check; `ceiling_hit` is then
    True, `work_at_ceiling` holds the work done until then, and the run is no longer
    reproducible (call `ceiling_warning` when it ends)."""

    deterministic = True

    def __init__(self, wall_ceiling_s: float | None = None) -> None:
        self._seconds = 0.0
        self.wall_ceiling_s = wall_ceiling_s
        self._wall_end = time.monotonic() + wall_ceiling_s if wall_ceiling_s is not None else math.inf
        self.ceiling_hit = False
        self.work_at_ceiling: float | None = None


    def wall_left(self) -> float:
        """Wall seconds left before the ceiling (inf without one)."""
        return self._wall_end - time.monotonic()

    def now(self) -> float:
        if not self.ceiling_hit and time.monotonic() > self._wall_end:
            self.ceiling_hit = True
            self.work_at_ceiling = self._seconds
            self._seconds += CEILING_JUMP_S
        return self._seconds

    def charge(self, seconds: float) -> None:
        self._seconds += max(float(seconds), 0.0)

    def work_done(self, since: float = 0.0) -> float:
        """Work charged since `since` (up to the ceiling, when it was hit)."""
        end = self.work_at_ceiling if self.ceiling_hit and self.work_at_ceiling is not None else self._seconds
        return end - since


_WALL = WallClock()
_CURRENT: contextvars.ContextVar[WallClock | WorkClock] = contextvars.ContextVar("neuroswap_clock", default=_WALL)


def current() -> WallClock | WorkClock:
    """The clock of the fit running in this context (the wall clock outside any fit)."""
    return _CURRENT.get()


@contextlib.contextmanager
def using(clock: WallClock | WorkClock) -> Iterator[WallClock | WorkClock]:
    token = _CURRENT.set(clock)
    try:
        yield clock
    finally:
        _CURRENT.reset(token)


def make(name: str, *, wall_ceiling_s: float | None = None) -> WallClock | WorkClock:
    """The clock named `name`; a work clock gets the wall-time ceiling `wall_ceiling_s`."""
    return WorkClock(wall_ceiling_s) if name == "work" else WallClock()


# -- the work clock's wall-time ceiling (verify, mining, distill; fit may use it the same way) ----
#: How far a work clock jumps when its wall ceiling is hit: past every deadline of a run.
CEILING_JUMP_S = 1e9
#: Default ceiling: this many times the budget, plus a grace for start-up on a small budget.
CEILING_FACTOR = 4.0
CEILING_GRACE_S = 5.0


class NotReproducibleWarning(UserWarning):
    """A work-clock run was ended by its wall-time ceiling: where it stopped depended on the
    machine's speed and load, so the same seed may give another result elsewhere."""


def check_ceiling(wall_ceiling_s: Any, budget_s: float | None) -> float | None:
    """The wall ceiling of a work-clock run: `wall_ceiling_s` seconds when given (a number > 0;
    `math.inf` for none), else (None) `CEILING_FACTOR` x `budget_s` + `CEILING_GRACE_S`, or none
    without a budget. InvalidArgument naming it otherwise."""
    if wall_ceiling_s is None:
        return None if budget_s is None else CEILING_FACTOR * float(budget_s) + CEILING_GRACE_S
    if isinstance(wall_ceiling_s, bool) or not isinstance(wall_ceiling_s, (int, float)) or not wall_ceiling_s > 0 \
            or (isinstance(wall_ceiling_s, int) and wall_ceiling_s > sys.float_info.max):  # no float holds it
        from ._validation import bad_argument

        raise bad_argument("wall_ceiling_s", wall_ceiling_s, "must be a number of seconds > 0 (math.inf for no "
                           "ceiling) or None for the default (4 x budget_s + 5 s)",
                           "Pass e.g. wall_ceiling_s=60: a work-clock run that reaches it ends there, "
                           "not reproducibly")
    return None if math.isinf(wall_ceiling_s) else float(wall_ceiling_s)


def ceiling_message(clock: Any, what: str) -> str | None:
    """The sentence saying that `clock` hit its wall ceiling during `what`, or None."""
    if not getattr(clock, "ceiling_hit", False):
        return None
    return (f"{what}: the work clock's wall-time ceiling (wall_ceiling_s={clock.wall_ceiling_s:g}) was reached "
            f"after {clock.work_at_ceiling or 0.0:.3g} s of nominal work; the run ended there, so its result is "
            "no longer reproducible (it depends on this machine's speed and load). Raise wall_ceiling_s, or "
            "lower budget_s")


def ceiling_warning(clock: Any, what: str, *, stacklevel: int = 3) -> str | None:
    """Warn (`NotReproducibleWarning`) when `clock` hit its wall ceiling; return the message."""
    message = ceiling_message(clock, what)
    if message is not None:
        import warnings

        warnings.warn(message, NotReproducibleWarning, stacklevel=stacklevel)
    return message


def charge_training_step(rows: int, parameters: int) -> None:
    current().charge(STEP_OVERHEAD_S + PER_ROW_PARAM_S * rows * parameters)


def charge_forward(rows: int, parameters: int) -> None:
    current().charge(PASS_OVERHEAD_S + PER_ROW_PARAM_S / 3 * rows * parameters)


def parameter_count(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def count_lines(fn: Callable[..., Any], kwargs: Mapping[str, Any], limit: int = 1_000_000) -> int:
    """Python lines executed by `fn(**kwargs)` (every frame, library code included, up to
    `limit`): a cost of the call that does not depend on the machine or its load."""
    count = 0

    def local(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local if count < limit else None

    def global_trace(frame: Any, event: str, arg: Any) -> Any:
        return local if count < limit else None

    previous = sys.gettrace()
    sys.settrace(global_trace)
    try:
        fn(**kwargs)
    except Exception:  # the legacy function's own outcome; only its cost matters here
        pass
    finally:
        sys.settrace(previous)
    return count


def nominal_call_costs(lines: float) -> tuple[float, float]:
    """(plain, path-traced) nominal cost of a call executing `lines` Python lines."""
    return CALL_OVERHEAD_S + PER_LINE_S * lines, TRACED_CALL_OVERHEAD_S + TRACED_PER_LINE_S * lines


def check(budget_clock: Any) -> str:
    """`budget_clock` when it names a clock, else InvalidArgument naming the choices."""
    if not isinstance(budget_clock, str) or budget_clock not in CLOCKS:
        from ._validation import bad_argument

        raise bad_argument("budget_clock", budget_clock, "must be 'wall' or 'work'",
                           "Pass budget_clock='work' for a run that is the same at any machine load, "
                           "or 'wall' (the default) to bound the wall time")
    return budget_clock


def mean_lines(fn: Callable[..., Any], sample: Any) -> float:
    """Mean Python lines `fn` executes on `sample` (kwargs dicts), counted after one plain call
    of each (so a cache the function fills on first use does not make one run differ from the
    next), with the garbage collector paused (a collection running some object's `__del__`
    inside the count would add lines that depend on what earlier code left behind)."""
    import gc

    rows = [dict(kwargs) for kwargs in sample]
    if not rows:
        return 0.0
    for kwargs in rows:
        try:
            fn(**kwargs)
        except Exception:  # the function's own outcome; only its cost matters here
            pass
    enabled = gc.isenabled()
    gc.disable()
    try:
        return float(sum(count_lines(fn, kwargs) for kwargs in rows) / len(rows))
    finally:
        if enabled:
            gc.enable()


# -- the exact-rules search's own meter (learn_exact limited in work: fit's work clock) -----------
#: nominal cost of one least-squares design the expression search builds and screens, and per
#: row x column of it (the search's hot loop; its traced calls are charged as path-traced calls)
DESIGN_OVERHEAD_S = 5e-4
PER_DESIGN_CELL_S = 4e-8
#: nominal cost of checking whether one piece's expression or constant reproduces a group of
#: calls (the merge of pieces, quadratic in their number), and per call checked
COVER_OVERHEAD_S = 2e-5
PER_COVER_ROW_S = 2e-7

_SEARCH_WORK: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("neuroswap_search_work",
                                                                                default=None)


@contextlib.contextmanager
def search_meter() -> Iterator[list[float]]:
    """A meter of the nominal work a search does inside the block ([seconds], shared with the code
    that charges it through `charge_search`): counted, not timed, so a search limited by it stops
    at the same step at any machine load."""
    box = [0.0]
    token = _SEARCH_WORK.set(box)
    try:
        yield box
    finally:
        _SEARCH_WORK.reset(token)


def charge_search(seconds: float) -> None:
    """Add `seconds` of nominal work to the running `search_meter` (nothing outside one)."""
    box = _SEARCH_WORK.get()
    if box is not None:
        box[0] += seconds


def charge_design(rows: int, columns: int) -> None:
    charge_search(DESIGN_OVERHEAD_S + PER_DESIGN_CELL_S * rows * columns)


def charge_cover(rows: int) -> None:
    charge_search(COVER_OVERHEAD_S + PER_COVER_ROW_S * rows)


@contextlib.contextmanager
def competing_load(enabled: bool = True) -> Iterator[None]:
    """Another process spinning on a core while the block runs: a loaded machine, for checking
    that a work-clock run does not depend on load (tests, benches).

    A process, not a thread: a spinning thread in this interpreter holds the GIL for whole
    switch intervals (5 ms) each time the fit releases it around a torch call, so it slows a
    fit of many small steps a hundredfold, which is not what load on a shared machine does."""
    import subprocess

    import os

    # spins while its parent lives: a bench killed mid-run leaves no spinner behind
    spin = f"import os\nwhile os.getppid() == {os.getpid()}: pass"
    spinner = subprocess.Popen([sys.executable, "-c", spin]) if enabled else None
    try:
        yield
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
