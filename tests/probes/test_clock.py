"""probes._clock: the wall clock and the deterministic work clock that budgets are spent on."""

from __future__ import annotations

import pytest

from probes import _clock


def test_count_lines_counts_python_lines():
    def loop(n: int) -> int:
        total = 0
        for i in range(n):
            total += i
        return total

    small, large = _clock.count_lines(loop, {"n": 10}), _clock.count_lines(loop, {"n": 1000})
    assert small < large
    assert 1900 <= large - small <= 2100  # two lines per extra iteration


def test_count_lines_survives_exceptions_and_restores_the_tracer():
    import sys

    def boom() -> None:
        raise ValueError("no")

    before = sys.gettrace()
    assert _clock.count_lines(boom, {}) >= 1
    assert sys.gettrace() is before


def test_work_clock_moves_only_when_charged():
    clock = _clock.WorkClock()
    assert clock.now() == 0.0
    with _clock.using(clock):
        assert _clock.current() is clock
        _clock.charge_training_step(rows=100, parameters=1000)
        _clock.charge_forward(rows=100, parameters=1000)
    assert _clock.current() is not clock  # restored outside
    expected = (_clock.STEP_OVERHEAD_S + _clock.PER_ROW_PARAM_S * 1e5
                + _clock.PASS_OVERHEAD_S + _clock.PER_ROW_PARAM_S / 3 * 1e5)
    assert clock.now() == pytest.approx(expected)
    clock.charge(-5.0)  # never backwards
    assert clock.now() == pytest.approx(expected)


def test_competing_load_spinner_exits_with_a_killed_parent():
    # a bench killed mid-run (SIGKILL: no finally runs) must not leave a spinning process behind
    import os
    import subprocess
    import sys
    import time

    script = ("import sys\nfrom probes import _clock\nwith _clock.competing_load():\n"
              "    sys.stdout.write('ready\\n'); sys.stdout.flush()\n    import time; time.sleep(60)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    assert parent.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    spinners = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split()
    assert spinners, "the load's spinner was not started"
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10.0
    alive = spinners
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in spinners if os.path.exists(f"/proc/{pid}")
                 and "Z" not in open(f"/proc/{pid}/stat").read().split()[2]]
    assert not alive, f"spinner(s) {alive} still running after their parent was killed"
