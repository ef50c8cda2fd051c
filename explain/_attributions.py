"""How much each argument moves an answer: attributions for a surrogate or a black box.

For a surrogate the network is differentiable, so Captum's integrated gradients (steps raised
until the completeness gap is small, the gap always reported), DeepLift and feature ablation
run on its encoded columns and are summed back to arguments. For the legacy function (any
callable), SHAP's exact or permutation explainer runs on the arguments themselves, categories
as indices decoded before each call; its additivity gap is reported, never silenced.
Results are data (`Attribution`); plotting is a separate step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from probes import Schema
from probes._validation import bad_argument, check_number, check_seed, require

from ._data import as_columns, base_point, call_batch, is_surrogate, n_rows, schema_of

#: integrated-gradients step counts tried in turn until the gap is within the bound.
IG_STEPS = (50, 100, 200, 400, 800)
#: at most this many argument slots for SHAP (exact up to EXACT_MAX, permutation above).
SHAP_MAX = 15
EXACT_MAX = 10
GRADIENT_METHODS = ("integrated_gradients", "deeplift", "ablation", "shap")
BLACKBOX_METHODS = ("shap", "ablation")
_ALIASES = {"ig": "integrated_gradients", "integrated-gradients": "integrated_gradients",
            "feature_ablation": "ablation", "deep_lift": "deeplift"}


@dataclass(frozen=True, eq=False)
class Attribution:
    """Per input row and argument, the share of the answer the argument accounts for.

    `values` is (N, n_args) in output units (relative to `baseline`); `delta` is the largest
    completeness gap of a gradient method relative to the output scale (`converged` says if
    it met the bound); `additivity` is SHAP's max |sum(phi) + base - f(x)|.
    """

    values: np.ndarray
    feature_names: tuple[str, ...]
    method: str
    baseline: Any
    inputs: dict[str, np.ndarray] = field(repr=False)
    delta: float | None = None
    converged: bool | None = None
    n_steps: int | None = None
    additivity: float | None = None
    base_values: np.ndarray | None = field(default=None, repr=False)
    target: Any = None
    encoded_values: np.ndarray | None = field(default=None, repr=False)
    encoded_names: tuple[str, ...] = field(default=(), repr=False)
    notes: tuple[str, ...] = ()

    def importance(self) -> dict[str, float]:
        """Mean |value| per argument (a global ranking)."""
        means = np.mean(np.abs(self.values), axis=0) if len(self.values) else np.zeros(len(self.feature_names))
        return {name: float(v) for name, v in zip(self.feature_names, means)}

    def ranking(self) -> list[str]:
        imp = self.importance()
        return sorted(imp, key=lambda k: -imp[k])

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "feature_names": list(self.feature_names),
                "importance": self.importance(), "delta": self.delta, "converged": self.converged,
                "n_steps": self.n_steps, "additivity": self.additivity, "n": int(len(self.values)),
                "target": _plain_target(self.target), "notes": list(self.notes)}


def _plain_target(target: Any) -> Any:
    if isinstance(target, np.ndarray):
        return target.tolist()
    if isinstance(target, (str, int, float, bool)) or target is None:
        return target
    return repr(target)


def _method(method: str, allowed: Sequence[str], what: str) -> str:
    name = _ALIASES.get(str(method).lower(), str(method).lower())
    if name not in allowed:
        raise bad_argument("method", method, f"is not available for {what}; use one of {list(allowed)}",
                           "Gradient methods need a surrogate; a plain function takes 'shap' or 'ablation'")
    return name


def attribute(model_or_fn: Any, inputs: Any, *, method: str = "auto", schema: Schema | None = None,
              baseline: Any = None, target: Any = None, ig_delta_bound: float = 0.01, seed: int = 0,
              background: Any = None, max_background: int = 50,
              ig_steps: Sequence[int] = IG_STEPS) -> Attribution:
    """Attribute the answers of `model_or_fn` on `inputs` to its arguments.

    A `replace.Surrogate` takes "integrated_gradients" (auto), "deeplift", "ablation" (on its
    network) or "shap" (black box on its arguments); a plain function takes "shap" (auto up to
    15 argument slots) or "ablation". `baseline`: a kwargs dict (the reference point; default
    the median/mode of `inputs`), or for a network an encoded vector. `background`: inputs SHAP
    masks with (default: `inputs`, at most `max_background` rows). `ig_steps`: the step counts
    integrated gradients tries in turn until the gap is within `ig_delta_bound`.
    """
    check_number("ig_delta_bound", ig_delta_bound, low=0, low_inclusive=False,
                 fix="Pass a positive relative gap, e.g. 0.01")
    check_seed("seed", seed)
    check_number("max_background", max_background, low=1, integer=True, fix="Pass e.g. max_background=50")
    if isinstance(ig_steps, (str, bytes)) or not isinstance(ig_steps, Sequence) or not ig_steps or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and 1 <= n < 2**31 for n in ig_steps):
        raise bad_argument("ig_steps", ig_steps, "must be a non-empty sequence of step counts >= 1",
                           "Pass e.g. ig_steps=(50, 100, 200)")
    torch_like = _is_torch_module(model_or_fn)
    if torch_like:
        return _attribute_module(model_or_fn, inputs, method="integrated_gradients" if method == "auto" else method,
                                 baseline=baseline, target=target, bound=ig_delta_bound, steps=tuple(ig_steps))
    if not callable(model_or_fn):
        raise bad_argument("model_or_fn", model_or_fn, "must be a surrogate, a torch module or a callable")
    schema = schema_of(model_or_fn, schema)
    columns = as_columns(inputs, schema)
    if background is not None:
        as_columns(background, schema, argument="background")  # refused here, before any call
    if target is not None and schema.output.kind in ("real", "vector"):
        width = int(schema.output.length or 1) if schema.output.kind == "vector" else 1
        if isinstance(target, (bool, np.bool_)) or not isinstance(target, (int, np.integer)) or not 0 <= target < width:
            raise bad_argument("target", target, f"is not an output index (0..{width - 1})",
                               "Pass None for the first output, or target=k for element k of a vector output")
    if baseline is not None:
        if isinstance(baseline, Mapping):
            as_columns([dict(baseline)], schema, argument="baseline")
        elif not (is_surrogate(model_or_fn) and _numbers(baseline)):
            raise bad_argument("baseline", baseline, "must be a kwargs dict of the arguments (for a surrogate's "
                               "network also an encoded vector of numbers)", "Pass e.g. baseline={'x': 0.0, ...}")
    if is_surrogate(model_or_fn):
        name = "integrated_gradients" if method == "auto" else _method(method, GRADIENT_METHODS, "a surrogate")
        if name != "shap":
            return _attribute_surrogate(model_or_fn, columns, schema, name, baseline, target, ig_delta_bound,
                                        tuple(ig_steps))
    else:
        slots = sum(f.width for f in schema.fields)
        name = ("shap" if slots <= SHAP_MAX else "ablation") if method == "auto" else \
            _method(method, BLACKBOX_METHODS, "a plain function (black box)")
    return attribute_blackbox(model_or_fn, columns, schema, method=name, baseline=baseline, target=target,
                              seed=seed, background=background, max_background=max_background)


def _numbers(value: Any) -> bool:
    """Whether `value` is a flat vector of real numbers (an encoded baseline)."""
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iuf"
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in value)


# -- networks (Captum) ------------------------------------------------------------------------------

def _is_torch_module(obj: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, torch.nn.Module)


def _two_d(module: Any) -> Any:
    """Wrap a module so a 1-D output (N,) becomes (N, 1): explainers index outputs by target."""
    import torch

    class TwoD(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            y = self.inner(x)
            return y.unsqueeze(1) if y.dim() == 1 else y

    return TwoD(module).eval()


def reused_activations(module: Any, example: Any) -> list[str]:
    """Names of activation modules called more than once in one forward pass (DeepLift's
    hooks give wrong multipliers for a reused module)."""
    import torch

    counts: dict[str, int] = {}
    handles = []
    for name, sub in module.named_modules():
        if len(list(sub.children())) == 0 and isinstance(sub, (torch.nn.ReLU, torch.nn.Sigmoid, torch.nn.Tanh,
                                                               torch.nn.ELU, torch.nn.LeakyReLU, torch.nn.GELU,
                                                               torch.nn.SiLU, torch.nn.Softplus)):
            handles.append(sub.register_forward_hook(
                lambda m, i, o, name=name: counts.__setitem__(name, counts.get(name, 0) + 1)))
    try:
        with torch.no_grad():
            module(example)
    finally:
        for h in handles:
            h.remove()
    return sorted(name for name, c in counts.items() if c > 1)


def _targets_for(outputs: Any, target: Any, labels: Sequence[Any] | None) -> tuple[Any, Any, list[str]]:
    """Captum target (int or per-row tensor) and the target as reported."""
    import torch

    notes: list[str] = []
    width = outputs.shape[1]
    if target is None:
        if labels is not None and width > 1:
            per_row = torch.argmax(outputs, dim=1)
            return per_row, np.asarray([labels[i] if i < len(labels) else int(i) for i in per_row.tolist()],
                                       dtype=object), ["target: each row's predicted class (its logit)"]
        if width > 1:
            notes.append(f"target: output 0 of {width} (pass target=k for another)")
        return 0, 0, notes
    if labels is not None and target in list(labels):
        index = list(labels).index(target)
        return index, target, notes
    if isinstance(target, (int, np.integer)) and 0 <= int(target) < width:
        return int(target), int(target), notes
    raise bad_argument("target", target, f"is not an output index (0..{width - 1}) or a label",
                       f"Labels are {list(labels) if labels is not None else 'not defined for this output'}")


def _run_captum(module: Any, X: np.ndarray, base: np.ndarray, method: str, target: Any, bound: float,
                labels: Sequence[Any] | None, feature_mask: Any = None,
                steps_tried: Sequence[int] = IG_STEPS) -> dict[str, Any]:
    import warnings

    torch = require("torch", "explain")
    with warnings.catch_warnings():  # captum's notes about hooks and requires_grad, not ours to show
        warnings.simplefilter("ignore", UserWarning)
        return _captum(torch, require("captum.attr", "explain"), module, X, base, method, target, bound, labels,
                       feature_mask, steps_tried)


def _captum(torch: Any, captum_attr: Any, module: Any, X: np.ndarray, base: np.ndarray, method: str, target: Any,
            bound: float, labels: Sequence[Any] | None, feature_mask: Any, steps_tried: Sequence[int]) -> dict[str, Any]:
    model = _two_d(module)
    x = torch.as_tensor(X, dtype=torch.float32)
    b = torch.as_tensor(base, dtype=torch.float32).reshape(1, -1).expand_as(x).contiguous()
    with torch.no_grad():
        out_x = model(x)
        out_b = model(b)
    captum_target, reported, notes = _targets_for(out_x, target, labels)
    if isinstance(captum_target, torch.Tensor):
        fx = out_x.gather(1, captum_target.reshape(-1, 1))[:, 0]
        fb = out_b.gather(1, captum_target.reshape(-1, 1))[:, 0]
    else:
        fx, fb = out_x[:, captum_target], out_b[:, captum_target]
    scale = max(float(torch.max(torch.abs(fx - fb))), float(torch.std(fx)) if len(fx) > 1 else 0.0, 1e-12)
    result: dict[str, Any] = {"target": reported, "notes": notes, "base_values": fb.numpy().astype(float)}
    if method == "integrated_gradients":
        ig = captum_attr.IntegratedGradients(model)
        for steps in steps_tried:
            attr, delta = ig.attribute(x, baselines=b, target=captum_target, n_steps=steps,
                                       return_convergence_delta=True, internal_batch_size=8192)
            rel = float(torch.max(torch.abs(delta))) / scale
            if rel <= bound:
                break
        result.update(values=attr.detach().numpy().astype(float), delta=rel, n_steps=steps, converged=rel <= bound)
        if rel > bound:
            result["notes"].append(f"integrated gradients did not converge: relative gap {rel:.3g} > {bound:g} "
                                   f"at {steps} steps (the network is not smooth along the path, e.g. a "
                                   "path-aware surrogate's hard routing); prefer method='shap' or 'ablation'")
    elif method == "deeplift":
        reused = reused_activations(model, x[:1])
        if reused:
            raise bad_argument("method", "deeplift", f"the network reuses activation modules {reused}",
                               "Use method='integrated_gradients', or give each layer its own nn.ReLU")
        dl = captum_attr.DeepLift(model)
        attr, delta = dl.attribute(x, baselines=b, target=captum_target, return_convergence_delta=True)
        rel = float(torch.max(torch.abs(delta))) / scale
        result.update(values=attr.detach().numpy().astype(float), delta=rel, converged=rel <= bound)
        if rel > bound:
            result["notes"].append(f"DeepLift completeness gap {rel:.3g} > {bound:g}: functional activations "
                                   "or unsupported layers; prefer integrated_gradients")
    else:
        fa = captum_attr.FeatureAblation(model)
        attr = fa.attribute(x, baselines=b, target=captum_target, feature_mask=feature_mask)
        result.update(values=attr.detach().numpy().astype(float))
    return result


def _attribute_module(module: Any, inputs: Any, *, method: str, baseline: Any, target: Any,
                      bound: float, steps: Sequence[int] = IG_STEPS) -> Attribution:
    name = _method(method, ("integrated_gradients", "deeplift", "ablation"), "a torch module")
    X = np.asarray(inputs.detach().numpy() if hasattr(inputs, "detach") else inputs, dtype=np.float32)
    if X.ndim != 2:
        raise bad_argument("inputs", f"<array of shape {X.shape}>", "a torch module needs an (N, d) array")
    base = X.mean(axis=0) if baseline is None else np.asarray(baseline, dtype=np.float32).reshape(-1)
    module.eval()
    result = _run_captum(module, X, base, name, target, bound, None, steps_tried=steps)
    names = tuple(f"x{i}" for i in range(X.shape[1]))
    return Attribution(result["values"], names, name, base, {n: X[:, i] for i, n in enumerate(names)},
                       delta=result.get("delta"), converged=result.get("converged"), n_steps=result.get("n_steps"),
                       base_values=result["base_values"], target=result["target"], encoded_values=result["values"],
                       encoded_names=names, notes=tuple(result["notes"]))


def _attribute_surrogate(surrogate: Any, columns: dict[str, np.ndarray], schema: Schema, method: str,
                         baseline: Any, target: Any, bound: float, steps: Sequence[int] = IG_STEPS) -> Attribution:
    torch = require("torch", "explain")
    X = np.asarray(surrogate.encode(columns), dtype=np.float32)
    if baseline is None:
        point = base_point(columns, schema)
        base = np.asarray(surrogate.encode(as_columns([point], schema)), dtype=np.float32)[0]
        shown: Any = point
    elif isinstance(baseline, Mapping):
        base = np.asarray(surrogate.encode(as_columns([dict(baseline)], schema)), dtype=np.float32)[0]
        shown = dict(baseline)
    else:
        base = np.asarray(baseline, dtype=np.float32).reshape(-1)
        shown = base
    if base.shape[0] != X.shape[1]:
        raise bad_argument("baseline", f"<{base.shape[0]} values>", f"must have {X.shape[1]} encoded values")
    groups = surrogate.feature_groups
    names = tuple(f.name for f in schema.fields)
    labels = _label_classes(surrogate, schema)
    mask = None
    if method == "ablation":
        group_id = np.zeros(X.shape[1], dtype=np.int64)
        for k, name in enumerate(names):
            group_id[list(groups[name])] = k
        mask = torch.as_tensor(group_id).reshape(1, -1)
    module = surrogate.torch_module()
    module.eval()
    result = _run_captum(module, X, base, method, target, bound, labels, feature_mask=mask, steps_tried=steps)
    encoded = result["values"]
    values = np.zeros((X.shape[0], len(names)))
    for k, name in enumerate(names):
        index = list(groups[name])
        # ablation credits a whole group to each of its columns: take one, do not sum
        values[:, k] = encoded[:, index[0]] if method == "ablation" else encoded[:, index].sum(axis=1)
    return Attribution(values, names, method, shown, columns, delta=result.get("delta"),
                       converged=result.get("converged"), n_steps=result.get("n_steps"),
                       base_values=result["base_values"], target=result["target"], encoded_values=encoded,
                       encoded_names=tuple(surrogate.feature_names), notes=tuple(result["notes"]))


def _label_classes(surrogate: Any, schema: Schema) -> list[Any] | None:
    if schema.output.kind != "label":
        return None
    out = getattr(surrogate, "output_encoder", None)
    classes = getattr(out, "classes", None)
    if classes:
        return [getattr(c, "value", None) if getattr(c, "kind", "value") == "value"
                else f"raises {getattr(getattr(c, 'error', None), 'type', '?')}" for c in classes]
    return list(schema.output.labels)


# -- black box (SHAP, ablation) on arguments ----------------------------------------------------------

class ArgumentCodec:
    """Arguments <-> a numeric matrix with one slot per scalar (categories as their index)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.slots: list[tuple[str, int]] = []
        for f in schema.fields:
            self.slots.extend((f.name, i) for i in range(f.width))
        self.groups = {f.name: [k for k, (n, _) in enumerate(self.slots) if n == f.name] for f in schema.fields}

    def encode(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        n = n_rows(columns)
        Z = np.zeros((n, len(self.slots)))
        for f in self.schema.fields:
            idx = self.groups[f.name]
            column = columns[f.name]
            if f.kind == "categorical":
                lookup = {repr(c): k for k, c in enumerate(f.categories)}
                Z[:, idx[0]] = [lookup.get(repr(v), 0) for v in column]
            elif f.kind == "vector":
                Z[:, idx] = np.asarray(column, dtype=float)
            else:
                Z[:, idx[0]] = np.asarray(column, dtype=float)
        return Z

    def decode(self, Z: np.ndarray) -> dict[str, np.ndarray]:
        columns: dict[str, np.ndarray] = {}
        for f in self.schema.fields:
            idx = self.groups[f.name]
            if f.kind == "categorical":
                k = np.clip(np.round(Z[:, idx[0]]).astype(int), 0, len(f.categories) - 1)
                column = np.empty(len(Z), dtype=object)
                for r, i in enumerate(k):
                    column[r] = f.categories[i]
                columns[f.name] = column
            elif f.kind == "boolean":
                columns[f.name] = Z[:, idx[0]] > 0.5
            elif f.kind == "integer":
                columns[f.name] = np.round(Z[:, idx[0]])
            elif f.kind == "vector":
                columns[f.name] = Z[:, idx].copy()
            else:
                columns[f.name] = Z[:, idx[0]].copy()
        return columns


def _outcome_keys(outcomes: Any) -> list[Any]:
    keys = []
    for value, error in zip(outcomes.values, outcomes.errors):
        keys.append(f"raises {error.type}" if error is not None else value)
    return keys


def _scalar_function(fn: Callable[..., Any], codec: ArgumentCodec, kind: str, target: Any,
                     fill: float) -> Callable[[np.ndarray], np.ndarray]:
    """Z -> a float per row: the output (real; vector element `target`), or for labels the
    indicator of the outcome `target`; `fill` where a real-valued call raised."""
    def g(Z: np.ndarray) -> np.ndarray:
        outcomes = call_batch(fn, codec.decode(np.asarray(Z, dtype=float)), codec.schema)
        if kind in ("label", "none"):
            return np.asarray([1.0 if _equal(k, target) else 0.0 for k in _outcome_keys(outcomes)])
        out = np.full(len(outcomes), fill)
        for i, (v, e) in enumerate(zip(outcomes.values, outcomes.errors)):
            if e is None and v is not None:
                try:
                    arr = np.asarray(v, dtype=float).reshape(-1)
                    out[i] = arr[int(target or 0)] if arr.size > 1 else arr[0]
                except (TypeError, ValueError, IndexError):
                    pass
        return np.where(np.isfinite(out), out, fill)
    return g


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False


def attribute_blackbox(fn: Callable[..., Any], columns: dict[str, np.ndarray], schema: Schema, *,
                       method: str = "shap", baseline: Any = None, target: Any = None, seed: int = 0,
                       background: Any = None, max_background: int = 50, shap_library: bool = False) -> Attribution:
    """SHAP (exact/permutation) or one-at-a-time ablation on the arguments of any callable.

    Exact Shapley values (interventional, over the background rows: what shap's ExactExplainer
    with an Independent masker computes) are computed here up to 10 slots, because shap's
    numba compilation costs ~15 s per process; `shap_library=True` uses shap.Explainer itself.
    Above 10 slots, shap's permutation explainer.
    """
    codec = ArgumentCodec(schema)
    kind = schema.output.kind
    Z = codec.encode(columns)
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    first = call_batch(fn, columns, schema)
    if kind in ("label", "none"):
        keys = _outcome_keys(first)
        if target is None:
            targets = keys  # each row explains its own outcome
            notes.append("target: each row's own outcome (indicator of that label)")
        else:
            targets = [target] * len(keys)
    else:
        targets = [target] * len(first)
    fill = 0.0
    if kind not in ("label", "none"):
        values = np.asarray([v for v, e in zip(first.values, first.errors) if e is None and v is not None],
                            dtype=object)
        numeric = [np.asarray(v, dtype=float).reshape(-1)[int(target or 0)] for v in values] if len(values) else []
        fill = float(np.mean(numeric)) if len(numeric) else 0.0
        if first.raised.any():
            notes.append(f"{int(first.raised.sum())} inputs raise: a raising call counts as {fill:.4g} (the mean answer)")
    if background is None:
        bg_cols = columns
    else:
        bg_cols = as_columns(background, schema, argument="background")
    bg = codec.encode(bg_cols)
    if len(bg) > max_background:
        bg = bg[rng.choice(len(bg), size=max_background, replace=False)]
    names = tuple(f.name for f in schema.fields)
    values_out = np.zeros((len(Z), len(names)))
    base_values = np.zeros(len(Z))
    slot_values = np.zeros_like(Z)
    additivity = 0.0
    used = method
    groups: dict[Any, list[int]] = {}
    for i, t in enumerate(targets):
        groups.setdefault(repr(t), []).append(i)
    if method == "ablation":
        point = dict(baseline) if isinstance(baseline, Mapping) else base_point(columns, schema)
        base_row = codec.encode(as_columns([point], schema))[0]
        for key, rows in groups.items():
            g = _scalar_function(fn, codec, kind, targets[rows[0]], fill)
            Zr = Z[rows]
            fx = g(Zr)
            for k, name in enumerate(names):
                Zm = Zr.copy()
                Zm[:, codec.groups[name]] = base_row[codec.groups[name]]
                values_out[rows, k] = fx - g(Zm)
            base_values[rows] = g(base_row[None, :])[0]
        return Attribution(values_out, names, "ablation", point, columns, base_values=base_values,
                           target=_target_report(targets, target), notes=tuple(notes))
    algorithm = "exact" if Z.shape[1] <= EXACT_MAX else "permutation"
    in_house = algorithm == "exact" and not shap_library
    used = "shap (exact)" if in_house else f"shap.Explainer ({algorithm})"
    for key, rows in groups.items():
        g = _scalar_function(fn, codec, kind, targets[rows[0]], fill)
        if in_house:
            phi, base = exact_shapley(g, Z[rows], bg)
        else:
            phi, base = _shap_library(g, Z[rows], bg, algorithm, seed)
        fx = g(Z[rows])
        additivity = max(additivity, float(np.max(np.abs(phi.sum(axis=1) + base - fx))) if len(rows) else 0.0)
        slot_values[rows] = phi
        base_values[rows] = base
    for k, name in enumerate(names):
        values_out[:, k] = slot_values[:, codec.groups[name]].sum(axis=1)
    if additivity > 1e-6 * max(1.0, float(np.max(np.abs(base_values))) if len(base_values) else 1.0):
        notes.append(f"SHAP additivity gap {additivity:.3g}: sum of values + base differs from f(x)")
    slot_names = tuple(n if schema[n].kind != "vector" else f"{n}[{i}]" for n, i in codec.slots)
    return Attribution(values_out, names, used, {"background_rows": int(len(bg))}, columns,
                       additivity=additivity, base_values=base_values, target=_target_report(targets, target),
                       encoded_values=slot_values, encoded_names=slot_names, notes=tuple(notes))


def exact_shapley(g: Callable[[np.ndarray], np.ndarray], Z: np.ndarray, background: np.ndarray,
                  *, chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Exact interventional Shapley values of `g` at each row of Z: v(S) is the mean of g over
    the background with the slots in S set to the row's values. Returns (phi (N, m), base (N,))."""
    n, m = Z.shape
    B = len(background)
    masks = ((np.arange(2 ** m)[:, None] >> np.arange(m)[None, :]) & 1).astype(bool)  # (2^m, m)
    sizes = masks.sum(axis=1)
    weights = np.array([math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) if s < m else 0.0
                        for s in range(m + 1)])
    values = np.zeros((n, 2 ** m))
    per_row = 2 ** m * B
    rows_per_chunk = max(1, chunk // per_row)
    for start in range(0, n, rows_per_chunk):
        block = Z[start:start + rows_per_chunk]
        k = len(block)
        stacked = np.broadcast_to(background[None, None, :, :], (k, 2 ** m, B, m)).copy()
        x = np.broadcast_to(block[:, None, None, :], (k, 2 ** m, B, m))
        chosen = np.broadcast_to(masks[None, :, None, :], (k, 2 ** m, B, m))
        stacked[chosen] = x[chosen]
        out = np.asarray(g(stacked.reshape(-1, m)), dtype=float).reshape(k, 2 ** m, B)
        values[start:start + k] = out.mean(axis=2)
    phi = np.zeros((n, m))
    index = np.arange(2 ** m)
    for i in range(m):
        without = index[~masks[:, i]]
        with_i = without | (1 << i)
        w = weights[sizes[without]]
        phi[:, i] = ((values[:, with_i] - values[:, without]) * w[None, :]).sum(axis=1)
    return phi, values[:, 0]


def _shap_library(g: Callable[[np.ndarray], np.ndarray], Z: np.ndarray, background: np.ndarray, algorithm: str,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    shap = require("shap", "explain")
    masker = shap.maskers.Independent(background, max_samples=len(background))
    options: dict[str, Any] = {"algorithm": algorithm}
    if algorithm == "permutation":
        options["seed"] = seed
    explainer = shap.Explainer(g, masker, **options)
    kwargs: dict[str, Any] = {"silent": True}
    if algorithm == "permutation":
        kwargs["max_evals"] = max(2 * Z.shape[1] + 1, 10 * (Z.shape[1] + 1))
    explanation = explainer(Z, **kwargs)
    phi = np.asarray(explanation.values, dtype=float).reshape(len(Z), Z.shape[1])
    base = np.asarray(explanation.base_values, dtype=float).reshape(-1)
    return phi, (np.broadcast_to(base, (len(Z),)).copy() if base.size == 1 else base)


def _target_report(targets: Sequence[Any], target: Any) -> Any:
    if target is not None:
        return target
    return np.asarray(list(targets), dtype=object) if targets and not all(t is None for t in targets) else None
