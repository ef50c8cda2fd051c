"""Which calls of a recorded function are kept: per-function state and sampling schedules.

The hot path of a sampled function only decrements a countdown (`FunctionState.countdown`)
and calls `admit` when it runs out, so a sampled-out call costs one attribute update and no
random draw: a fixed `sample_rate` draws geometric gaps between kept calls (the same law as a
coin flip per call), `sample="adaptive"` widens the gap as calls accumulate (PyAnnotate's
early-then-sparse pattern), and a reached cap sets an endless countdown. Calls are counted by
the countdown itself, so sampled-out calls show in `record.stats()` at no extra cost.
"""

from __future__ import annotations

import inspect
import math
import random
import sys
from typing import Any

_OFF, _ON, _COUNT = 0, 1, 2
_NO_LIMIT = sys.maxsize
#: a countdown that never runs out in practice (it still counts the calls it sees).
_FOREVER = 1 << 62

#: `sample="adaptive"`: calls kept in full before the share starts to fall (unless keep_first says).
ADAPTIVE_KEEP_FIRST = 1_000
#: `sample="adaptive"`: traces kept per function and process (unless max_traces says).
ADAPTIVE_MAX_TRACES = 10_000
SAMPLE_MODES = (None, "adaptive")

_rand = random.random
_log = math.log


class Binder:
    """Arguments -> `{name: value}` in signature order with defaults applied.

    Built once per function, since `inspect.Signature.bind` costs microseconds per call; simple
    signatures (no positional-only, no *args/**kwargs) use a dict-based fast path.
    """

    def __init__(self, signature: inspect.Signature) -> None:
        self.signature = signature
        params = list(signature.parameters.values())
        kinds = {p.kind for p in params}
        self.simple = kinds <= {inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY}
        self.names = [p.name for p in params]
        self.name_set = frozenset(self.names)
        self.positional = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        self.defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if not self.simple:
            bound = self.signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return dict(bound.arguments)
        if len(args) > len(self.positional):
            raise TypeError(f"{len(args)} positional arguments for {len(self.positional)} parameters")
        given = dict(zip(self.positional, args))
        for key, value in kwargs.items():
            if key in given or key not in self.name_set:
                raise TypeError(f"unexpected or repeated argument {key!r}")
            given[key] = value
        out: dict[str, Any] = {}
        for name in self.names:
            if name in given:
                out[name] = given[name]
            elif name in self.defaults:
                out[name] = self.defaults[name]
            else:
                raise TypeError(f"missing argument {name!r}")
        return out


class FunctionState:
    """What the wrapper of one function needs on the hot path, and what the writer needs later.

    `mode`: 0 off (recording disabled: not even counted), 1 every call, 2 counted down: the
    wrapper decrements `countdown` and asks `admit` when it reaches 0. Calls seen so far are
    `seen + gap - countdown` (`seen` counts up to the last admitted call, `gap` is the countdown
    set then); `taken` counts admitted calls. Updates are unlocked, so under concurrent calls
    the counts and the cap are approximate by a few.
    """

    __slots__ = ("name", "source_hash", "skip", "mode", "rate", "limit", "keep_first", "adaptive", "taken",
                 "seen", "gap", "countdown", "deduped", "store", "redact", "binder", "arg_names", "dedupe",
                 "__weakref__")

    def __init__(self, *, name: str, source_hash: str, skip: int, rate: float, limit: int | None,
                 keep_first: int, store: Any, redact: tuple[str, ...], binder: Binder, enabled: bool,
                 adaptive: bool = False) -> None:
        self.name = name
        self.source_hash = source_hash
        self.skip = skip
        self.rate = float(rate)
        self.limit = _NO_LIMIT if limit is None else int(limit)
        self.keep_first = int(keep_first)
        self.adaptive = bool(adaptive)
        if self.adaptive and self.keep_first < 1:  # the schedule divides by it
            self.keep_first = ADAPTIVE_KEEP_FIRST
        self.taken = 0
        #: admitted calls the writer left out as repeats (adaptive): they do not count towards the cap
        self.deduped = 0
        self.seen = 0
        self.gap = 1
        self.countdown = 1
        self.store = store
        self.redact = redact
        self.binder = binder
        #: names of the values a generated wrapper enqueues (None: the generic wrapper's args/kwargs)
        self.arg_names: tuple[str, ...] | None = None
        #: the writer's memory of (inputs, outcome) texts already stored (adaptive only), or None
        self.dedupe: set[Any] | None = set() if self.adaptive else None
        if not enabled:
            self.mode = _OFF
        elif self.rate >= 1.0 and self.limit == _NO_LIMIT and not self.adaptive:
            self.mode = _ON
        else:
            self.mode = _COUNT
        # the first call is admitted unless sampling says otherwise
        if self.keep_first > 0 or self.adaptive or self.rate >= 1.0:
            self.gap = self.countdown = 1
        elif self.rate <= 0.0:
            self.gap = self.countdown = _FOREVER
        else:
            self.gap = self.countdown = 1 + int(_log(1.0 - _rand()) / _log(1.0 - self.rate))

    @property
    def calls(self) -> int:
        """Calls seen while counting (mode 2); 0 in the other modes."""
        return self.seen + self.gap - self.countdown if self.mode == _COUNT else 0

    def admit(self) -> bool:
        """Called by the wrapper when `countdown` ran out: whether this call is recorded, and the
        countdown to the next recorded call (geometric for `sample_rate`, widening for adaptive)."""
        seen = self.seen + self.gap - min(self.countdown, 0)  # concurrent decrements past 0 count too
        self.seen = seen
        taken = self.taken
        kept = taken - self.deduped
        if kept >= self.limit:
            self.gap = self.countdown = _FOREVER
            return False
        self.taken = taken + 1
        if kept + 1 >= self.limit:
            gap = _FOREVER
        elif seen < self.keep_first:
            gap = 1
        elif self.adaptive:
            # keep about keep_first / seen of the calls: the stored count grows like
            # keep_first * (1 + ln(seen / keep_first)); the jitter keeps periodic callers covered
            gap = 1 + int(seen / self.keep_first * (0.5 + _rand()))
        elif self.rate >= 1.0:
            gap = 1
        elif self.rate <= 0.0:
            gap = _FOREVER
        else:  # the number of calls to the next kept one, as for a coin flip per call
            gap = 1 + int(_log(1.0 - _rand()) / _log(1.0 - self.rate))
        self.gap = self.countdown = gap
        return True

    def forget(self, repeats: int) -> None:
        """The writer left out `repeats` admitted calls as repeats: they stop counting towards
        the cap, and a cap already reached opens again on the adaptive schedule (the writer's
        thread; a call racing with it may go uncounted)."""
        self.deduped += repeats
        if self.gap == _FOREVER and self.taken - self.deduped < self.limit:
            seen = self.seen + self.gap - self.countdown
            self.seen = seen
            self.gap = self.countdown = 1 + int(seen / self.keep_first * (0.5 + _rand()))

    def inputs(self, item: tuple[Any, ...]) -> dict[str, Any]:
        """`{name: value}` of a queued call, defaults applied, self/cls left out."""
        if self.arg_names is not None:
            return dict(zip(self.arg_names, item[5:]))
        return self.binder(item[5], item[6])

