"""What a saved surrogate says about itself: provenance, versions, integrity hashes, the call signature.

A surrogate file must be reproducible (which function, which data, which seed, which
library versions) and must refuse to load when it was truncated or edited; no pickle is
involved anywhere, so loading never runs code.
"""

from __future__ import annotations

import enum
import hashlib
import inspect
import json
import keyword
import platform
import sys
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from probes._schema import _decode_value, _encode_value, _parameters

FORMAT = "neuroswap-surrogate"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "weights.safetensors"

_MISSING = object()


def versions() -> dict[str, str]:
    import numpy

    out = {"python": platform.python_version(), "numpy": numpy.__version__}
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        out["torch"] = "absent"
    try:
        from importlib.metadata import version

        out["neuroswap"] = version("neuroswap")
    except Exception:  # pragma: no cover - not installed as a distribution
        out["neuroswap"] = "unknown"
    return out


def sha256_file(path: Any) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=True)


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """sha256 of the manifest without its own `manifest_sha256` entry."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def data_hash(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


# -- call signature -----------------------------------------------------------------------------

def _encode_default(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return {"sequence": type(value).__name__, "values": list(value)}
    return _encode_value(value)  # raises SchemaError when it cannot be stored


def _decode_default(data: Any) -> Any:
    if isinstance(data, dict) and "sequence" in data:
        return tuple(data["values"]) if data["sequence"] == "tuple" else list(data["values"])
    return _decode_value(data)


def signature_spec(fn: Callable[..., Any]) -> list[dict[str, Any]]:
    """The caller-facing parameters of `fn` as JSON (name, kind, default when storable)."""
    spec = []
    for param in _parameters(fn):
        item: dict[str, Any] = {"name": param.name, "kind": param.kind.name}
        if param.default is not inspect.Parameter.empty:
            try:
                item["default"] = _encode_default(param.default)
            except Exception:  # an unstorable default: the argument becomes required
                pass
        spec.append(item)
    return spec


def make_binder(qualname: str, spec: Sequence[Mapping[str, Any]]) -> Callable[..., tuple]:
    """A function with the legacy signature returning its arguments as a tuple (schema order).

    Binding through a real Python function gives exactly Python's TypeErrors for missing,
    extra or duplicated arguments, at the cost of a plain call.
    """
    name = qualname.rsplit(".", 1)[-1]
    if not name.isidentifier() or keyword.iskeyword(name):
        name = "surrogate"
    pieces: list[str] = []
    namespace: dict[str, Any] = {}
    seen_kinds = [p["kind"] for p in spec]
    star_done = False
    for index, param in enumerate(spec):
        pname = param["name"]
        if not pname.isidentifier() or keyword.iskeyword(pname):
            raise ValueError(f"parameter name {pname!r} is not an identifier")
        if param["kind"] == "KEYWORD_ONLY" and not star_done:
            pieces.append("*")
            star_done = True
        text = pname
        if "default" in param:
            namespace[f"_default_{index}"] = _decode_default(param["default"])
            text += f"=_default_{index}"
        pieces.append(text)
        if param["kind"] == "POSITIONAL_ONLY" and (index + 1 == len(spec) or seen_kinds[index + 1] != "POSITIONAL_ONLY"):
            pieces.append("/")
    names = ", ".join(p["name"] for p in spec)
    source = f"def {name}({', '.join(pieces)}):\n    return ({names}{',' if spec else ''})\n"
    exec(compile(source, f"<neuroswap binder for {qualname}>", "exec"), namespace)  # noqa: S102 - names checked
    binder = namespace[name]
    binder.__qualname__ = qualname
    return binder


def defaults_of(spec: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {p["name"]: _decode_default(p["default"]) for p in spec if "default" in p}


def plain(value: Any) -> Any:
    """JSON-safe copy of metrics and settings (numpy scalars, tuples, enums)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, float) or isinstance(value, (int, str, bool)) or value is None:
        return value
    return repr(value)
