"""What a saved surrogate says about itself: provenance, versions, integrity hashes, the call signature.

A surrogate file must be reproducible (which function, which data, which seed, which
library versions) and must refuse to load when it was truncated or edited; no pickle is
involved anywhere, and every manifest field is checked (`check_manifest`) before it is used,
so loading never runs or imports code the file names. With a key, `sign`/`signature_ok`
authenticate the manifest (which carries the weights' sha256) by HMAC-SHA256.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import inspect
import json
import keyword
import math
import os
import platform
import sys
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from probes._errors import SurrogateFileError
from probes._schema import _decode_value, _encode_value, _parameters
from probes._validation import bad_argument

FORMAT = "neuroswap-surrogate"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "weights.safetensors"
#: manifest field holding the HMAC-SHA256 (hex) of the manifest body when saved with a key
SIGNATURE_KEY = "signature_hmac_sha256"
#: environment variable read for the signing key when `save`/`load` get `key=None`
KEY_ENV = "NEUROSWAP_SIGNING_KEY"
#: the fields `Surrogate.save` writes, and those it must find on load
WRITTEN_KEYS = frozenset({
    "format", "format_version", "function", "source_hash", "signature", "schema", "tolerance",
    "input_encoder", "output_encoder", "model", "metrics", "weights", "saved_at", "versions",
    "manifest_sha256",
})
REQUIRED_KEYS = frozenset({
    "format", "format_version", "function", "signature", "schema", "tolerance", "input_encoder",
    "output_encoder", "model", "weights", "manifest_sha256",
})
#: fields that are plain JSON data (provenance, settings, the guard's calibration): read as data
#: only, never decoded into objects, so they are checked only for being plain JSON
DATA_KEYS = frozenset({"training", "hyperparameters", "distributed", "calibration", "guard"})
#: a hybrid surrogate's exact expressions by path id (`probes._expressions.Expression.to_dict` data,
#: validated node by node with `Expression.from_dict`; never code)
EXPRESSIONS_KEY = "expressions"
#: an exact surrogate's program (`probes._program.ExactProgram.to_dict` data: the code's partition
#: and pieces, validated field by field with `ExactProgram.from_dict`; never code)
PROGRAM_KEY = "exact_program"
#: every top-level field a manifest may hold; anything else makes `load` refuse the file
KNOWN_KEYS = WRITTEN_KEYS | DATA_KEYS | {SIGNATURE_KEY, EXPRESSIONS_KEY, PROGRAM_KEY}
PARAMETER_KINDS = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY")
#: qualname parts Python itself writes for nested functions and lambdas
_QUALNAME_MARKERS = frozenset({"<locals>", "<lambda>"})

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


def _body(manifest: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k not in ("manifest_sha256", SIGNATURE_KEY)}


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """sha256 of the manifest without its own `manifest_sha256` and signature entries."""
    return hashlib.sha256(canonical(_body(manifest)).encode()).hexdigest()


# -- authentication -------------------------------------------------------------------------------

def signing_key(key: bytes | str | None) -> bytes | None:
    """The key as bytes: `key` itself (str as UTF-8), else `$NEUROSWAP_SIGNING_KEY`, else None."""
    if key is None:
        key = os.environ.get(KEY_ENV) or None
        if key is None:
            return None
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, (bytes, bytearray)):
        raise bad_argument("key", type(key).__name__, "must be bytes or str",
                           f"Pass the shared secret as bytes or str, or set ${KEY_ENV}")
    if not key:
        raise bad_argument("key", key, "must not be empty", "Pass a secret of at least 16 random bytes")
    return bytes(key)


def sign(manifest: Mapping[str, Any], key: bytes) -> str:
    """HMAC-SHA256 (hex) of the canonical manifest body; the body holds the weights' sha256, so
    the signature covers the weights too."""
    message = b"neuroswap-surrogate-hmac-v1\n" + canonical(_body(manifest)).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_ok(manifest: Mapping[str, Any], key: bytes) -> bool:
    stored = manifest.get(SIGNATURE_KEY)
    if not isinstance(stored, str):
        return False
    return hmac.compare_digest(stored.encode("utf-8", "replace"), sign(manifest, key).encode("ascii"))


# -- manifest checks (before any field is used) ------------------------------------------------

def is_name(text: Any) -> bool:
    """A Python identifier that is not a keyword (usable as an argument or variable name)."""
    return isinstance(text, str) and text.isidentifier() and not keyword.iskeyword(text)


def is_dotted(text: Any) -> bool:
    """`a.b.c` made of identifiers (a module path, or an exception type such as `pkg.mod.Error`)."""
    return isinstance(text, str) and bool(text) and all(is_name(part) for part in text.split("."))


def is_function_name(text: Any) -> bool:
    """`dotted.module:Qual.name` made of identifiers (`<locals>`/`<lambda>` allowed in the qualname)."""
    if not isinstance(text, str) or text.count(":") != 1:
        return False
    module, qualname = text.split(":")
    return is_dotted(module) and bool(qualname) and all(
        is_name(part) or part in _QUALNAME_MARKERS for part in qualname.split("."))


def _walk(value: Any, field: str) -> Iterator[tuple[str, Any]]:
    """Every (path, value) under `value`, iteratively (a deeply nested file cannot overflow the stack)."""
    stack = [(field, value)]
    while stack:
        path, item = stack.pop()
        yield path, item
        if isinstance(item, dict):
            stack.extend((f"{path}.{k}", v) for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(item))


def _plain_json_problem(value: Any, field: str) -> tuple[str, Any] | None:
    for path, item in _walk(value, field):
        if isinstance(item, dict):
            bad = [k for k in item if not isinstance(k, str)]
            if bad:
                return f"{path} (key)", bad[0]
        elif not (item is None or isinstance(item, (list, tuple, str, bool, int, float))):
            return path, item
    return None


class _Checker:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, value: Any, rule: str) -> SurrogateFileError:
        shown = repr(value)
        if len(shown) > 200:
            shown = shown[:200] + "..."
        return SurrogateFileError(
            f"{self.where!r} : field {field}={shown} : {rule}. The file was edited or not written by "
            "neuroswap; load only surrogate files from a trusted source, or re-save the surrogate with "
            "Surrogate.save")

    def need(self, ok: bool, field: str, value: Any, rule: str) -> None:
        if not ok:
            raise self.fail(field, value, rule)

    def mapping(self, value: Any, field: str) -> Mapping[str, Any]:
        self.need(isinstance(value, Mapping), field, value, "must be a JSON object")
        return value

    def items(self, value: Any, field: str) -> list[Any]:
        self.need(isinstance(value, (list, tuple)), field, value, "must be a JSON list")
        return list(value)

    def plain(self, value: Any, field: str) -> None:
        problem = _plain_json_problem(value, field)
        if problem is not None:
            raise self.fail(problem[0], problem[1], "must be plain JSON data (object, list, string, number, "
                                                   "bool, null)")

    def name(self, value: Any, field: str) -> None:
        self.need(is_name(value), field, value, "must be a Python identifier that is not a keyword")

    def enum_refs(self, value: Any, field: str) -> None:
        """Stored enum members ({"enum": "module:Qual", "name": ...}) name identifiers only, and a
        module that is already imported: decoding them must not import anything."""
        for path, item in _walk(value, field):
            if isinstance(item, dict) and "enum" in item:
                ref = item["enum"]
                self.need(is_function_name(ref), f"{path}.enum", ref,
                          "must be 'module:Qual.name' made of Python identifiers")
                self.need(isinstance(item.get("name"), str), f"{path}.name", item.get("name"),
                          "must be the enum member's name (a string)")
                module = ref.split(":")[0]
                if module not in sys.modules:
                    raise SurrogateFileError(
                        f"{self.where!r} : field {path}.enum={ref!r} : its module {module!r} is not imported, and "
                        "Surrogate.load never imports a module a file names. Import the enum's module (or the "
                        "legacy function) before loading")

    def error_type(self, value: Any, field: str) -> None:
        self.need(is_dotted(value), field, value, "must be an exception type name such as 'ValueError' "
                                                  "or 'package.module.Error'")


def _check_expressions(c: "_Checker", data: Any) -> None:
    """The expressions field: {path id: expression data}, each a valid expression tree."""
    from probes._expressions import Expression, ExpressionError

    for path, item in c.mapping(data, EXPRESSIONS_KEY).items():
        try:
            Expression.from_dict(item)
        except (ExpressionError, RecursionError, TypeError, KeyError, ValueError) as exc:
            raise c.fail(f"{EXPRESSIONS_KEY}.{path}", item, f"is not a valid expression ({exc})") from None


def _check_program(c: "_Checker", data: Any) -> None:
    """The exact_program field: a valid program (tests, nodes, leaves), nothing in it run."""
    from probes._program import ExactProgram, ProgramError

    try:
        ExactProgram.from_dict(data)
    except (ProgramError, RecursionError, TypeError, KeyError, ValueError) as exc:
        raise c.fail(PROGRAM_KEY, "...", f"is not a valid exact program ({exc})") from None


def check_manifest(manifest: Any, where: str, *, saving: bool = False) -> None:
    """Refuse (SurrogateFileError naming `where`, the field and its value) a manifest whose fields
    are not what `Surrogate.save` writes: unknown top-level fields, names that are not identifiers,
    unknown parameter kinds, anything but plain JSON. With `saving`, weights and checksum may
    still be missing (they are written last)."""
    c = _Checker(where)
    c.mapping(manifest, "manifest")
    for key in manifest:
        c.need(key in KNOWN_KEYS, str(key), manifest[key], f"is not a surrogate manifest field (known fields: "
                                                  f"{', '.join(sorted(KNOWN_KEYS))})")
    required = REQUIRED_KEYS - ({"weights", "manifest_sha256"} if saving else set())
    for key in sorted(required):
        c.need(key in manifest, key, None, "is missing")
    c.plain(manifest, "manifest")
    c.need(manifest["format"] == FORMAT, "format", manifest["format"], f"must be {FORMAT!r}")
    c.need(manifest["format_version"] == FORMAT_VERSION and isinstance(manifest["format_version"], int),
           "format_version", manifest["format_version"], f"must be {FORMAT_VERSION}")
    c.need(is_function_name(manifest["function"]), "function", manifest["function"],
           "must be 'dotted.module:Qual.name' made of Python identifiers")
    for key in ("source_hash", "saved_at", "manifest_sha256", SIGNATURE_KEY):
        if key in manifest:
            c.need(isinstance(manifest[key], str), key, manifest[key], "must be a string")
    # signature: the legacy call signature, compiled into a binder
    seen: set[str] = set()
    for i, param in enumerate(c.items(manifest["signature"], "signature")):
        field = f"signature[{i}]"
        c.mapping(param, field)
        extra = set(param) - {"name", "kind", "default"}
        c.need(not extra, field, sorted(extra), "may hold only 'name', 'kind' and 'default'")
        c.name(param.get("name"), f"{field}.name")
        c.need(param["name"] not in seen, f"{field}.name", param["name"], "appears twice")
        seen.add(param["name"])
        c.need(param.get("kind") in PARAMETER_KINDS, f"{field}.kind", param.get("kind"),
               f"must be one of {PARAMETER_KINDS}")
    c.enum_refs(manifest["signature"], "signature")
    # schema: field names become argument names in generated code
    schema = c.mapping(manifest["schema"], "schema")
    for i, item in enumerate(c.items(schema.get("fields"), "schema.fields")):
        c.name(c.mapping(item, f"schema.fields[{i}]").get("name"), f"schema.fields[{i}].name")
    if schema.get("function"):
        c.need(is_function_name(schema["function"]), "schema.function", schema["function"],
               "must be 'dotted.module:Qual.name' made of Python identifiers")
    output = c.mapping(schema.get("output"), "schema.output")
    for i, name in enumerate(c.items(output.get("error_types", []), "schema.output.error_types")):
        c.error_type(name, f"schema.output.error_types[{i}]")
    c.enum_refs(schema, "schema")
    # tolerance: two numbers
    tolerance = c.mapping(manifest["tolerance"], "tolerance")
    for key, value in tolerance.items():
        c.need(isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value),
               f"tolerance.{key}", value, "must be a number")
    # encoders
    encoder = c.mapping(manifest["input_encoder"], "input_encoder")
    for i, item in enumerate(c.items(encoder.get("fields"), "input_encoder.fields")):
        c.name(c.mapping(item, f"input_encoder.fields[{i}]").get("name"), f"input_encoder.fields[{i}].name")
    c.enum_refs(encoder, "input_encoder")
    out = c.mapping(manifest["output_encoder"], "output_encoder")
    for i, item in enumerate(c.items(out.get("classes", []), "output_encoder.classes")):
        error = c.mapping(item, f"output_encoder.classes[{i}]").get("error")
        if error is not None:
            c.error_type(c.mapping(error, f"output_encoder.classes[{i}].error").get("type"),
                         f"output_encoder.classes[{i}].error.type")
    for i, row in enumerate(c.items(out.get("error_index", []), "output_encoder.error_index")):
        c.error_type(c.items(row, f"output_encoder.error_index[{i}]")[0] if row else None,
                     f"output_encoder.error_index[{i}][0]")
    c.enum_refs(out, "output_encoder")
    c.mapping(manifest["model"], "model")
    for key in ("metrics", "versions"):
        if key in manifest:
            c.mapping(manifest[key], key)
    if EXPRESSIONS_KEY in manifest:
        _check_expressions(c, manifest[EXPRESSIONS_KEY])
    if manifest.get(PROGRAM_KEY) is not None:
        _check_program(c, manifest[PROGRAM_KEY])
    # DATA_KEYS (training, calibration, guard...) are plain JSON, checked above with the rest
    if "weights" in manifest:
        weights = c.mapping(manifest["weights"], "weights")
        c.need(weights.get("file") == WEIGHTS_FILE, "weights.file", weights.get("file"), f"must be {WEIGHTS_FILE!r}")
        digest = weights.get("sha256")
        c.need(isinstance(digest, str) and len(digest) == 64 and all(ch in "0123456789abcdef" for ch in digest),
               "weights.sha256", digest, "must be a sha256 in hex")
        c.need(isinstance(weights.get("bytes"), int) and not isinstance(weights.get("bytes"), bool)
               and weights["bytes"] >= 0, "weights.bytes", weights.get("bytes"), "must be a byte count")


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
