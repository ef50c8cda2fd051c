"""A surrogate on disk: a directory of `manifest.json` (plain JSON) and `weights.safetensors`.

Reading checks every field, the checksums and (with a key) the HMAC signature before anything
is built, and never imports or runs what the file names. `Surrogate.save`/`Surrogate.load`
delegate here.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

from probes import Schema, SurrogateFileError, Tolerance
from probes._identity import source_hash
from probes._validation import bad_argument, check_callable, check_flag

from . import _hybrid
from . import _manifest as mf
from ._encoding import InputEncoder
from ._models import ModelWeights
from ._output_encoding import OutputEncoder
from ._predictions import SurrogateMetrics


def save_surrogate(surrogate: Any, path: str | os.PathLike[str], *, key: bytes | str | None = None) -> Path:
    """`Surrogate.save` (its docstring says what is written): nothing is written that load would refuse."""
    from safetensors.numpy import save_file

    secret = mf.signing_key(key)
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise SurrogateFileError(f"path={str(folder)!r} : exists and is not a directory. A surrogate is "
                                 "saved as a directory; pass a new or existing directory path")
    manifest = {k: v for k, v in surrogate.manifest.items() if k not in ("manifest_sha256", mf.SIGNATURE_KEY)}
    manifest.update({
        "format": mf.FORMAT,
        "format_version": mf.FORMAT_VERSION,
        "function": surrogate.function,
        "source_hash": surrogate.source_hash,
        "signature": surrogate.signature,
        "schema": surrogate.schema.to_dict(),
        "tolerance": surrogate.tolerance.to_dict(),
        "input_encoder": surrogate.input_encoder.to_dict(),
        "output_encoder": surrogate.output_encoder.to_dict(),
        "model": surrogate.weights.layout(),
        "metrics": surrogate.metrics.to_dict(),
        "calibration": surrogate.calibration.to_dict() if surrogate.calibration is not None else None,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    manifest.setdefault("versions", mf.versions())
    manifest.pop(mf.EXPRESSIONS_KEY, None)
    if surrogate.expressions_:  # a hybrid surrogate's exact paths, as data
        manifest[mf.EXPRESSIONS_KEY] = _hybrid.to_data(surrogate.expressions_)
    manifest.pop(mf.PROGRAM_KEY, None)
    if surrogate.program_ is not None:  # the exact program, as data
        manifest[mf.PROGRAM_KEY] = surrogate.program_.to_dict()
    # what load would refuse is not written (checked before any file is touched)
    mf.check_manifest(manifest, str(folder / mf.MANIFEST_FILE), saving=True)
    folder.mkdir(parents=True, exist_ok=True)
    weights_path = folder / mf.WEIGHTS_FILE
    tmp = folder / (mf.WEIGHTS_FILE + ".tmp")
    save_file(surrogate.weights.tensors(), str(tmp), metadata={"format": mf.FORMAT})
    os.replace(tmp, weights_path)
    manifest["weights"] = {"file": mf.WEIGHTS_FILE, "sha256": mf.sha256_file(weights_path),
                           "bytes": weights_path.stat().st_size}
    manifest["manifest_sha256"] = mf.manifest_digest(manifest)
    if secret is not None:
        manifest[mf.SIGNATURE_KEY] = mf.sign(manifest, secret)
    text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=True)
    tmp = folder / (mf.MANIFEST_FILE + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, folder / mf.MANIFEST_FILE)
    surrogate.manifest = manifest
    return folder

def load_surrogate(cls: Any, path: str | os.PathLike[str], *, fn: Any = None, key: bytes | str | None = None,
                   allow_unsigned: bool = False) -> Any:
    """`Surrogate.load` (its docstring holds the guarantees): every check before anything is built."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise bad_argument("path", path, "must be the directory a surrogate was saved to (a str or Path)",
                           "Pass e.g. Surrogate.load('fee_surrogate')")
    check_callable("fn", fn, optional=True, fix="Pass the legacy function (its source is checked), or None")
    check_flag("allow_unsigned", allow_unsigned, fix="Pass allow_unsigned=True to accept unsigned files")
    secret = mf.signing_key(key)
    folder = Path(path)
    manifest_path = folder / mf.MANIFEST_FILE
    where = str(manifest_path)
    if not folder.is_dir() or not manifest_path.is_file():
        raise SurrogateFileError(f"{where!r} : not found; {str(folder)!r} is not a saved "
                                 "neuroswap surrogate (a directory written by Surrogate.save)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SurrogateFileError(f"{where!r} : unreadable or not JSON ({type(exc).__name__}: {exc}); the "
                                 "file is truncated or not a neuroswap manifest") from None
    if not isinstance(manifest, dict) or manifest.get("format") != mf.FORMAT:
        raise SurrogateFileError(f"{where!r} : not a neuroswap surrogate manifest "
                                 f"(format={manifest.get('format') if isinstance(manifest, dict) else None!r})")
    if manifest.get("format_version") != mf.FORMAT_VERSION:
        raise SurrogateFileError(f"{where!r} : format_version={manifest.get('format_version')!r} "
                                 f"is not supported (expected {mf.FORMAT_VERSION})")
    if manifest.get("manifest_sha256") != mf.manifest_digest(manifest):
        raise SurrogateFileError(f"{where!r} : its content does not match its checksum; "
                                 "the manifest was edited or damaged")
    if secret is not None:
        if mf.SIGNATURE_KEY not in manifest:
            if not allow_unsigned:
                raise SurrogateFileError(
                    f"{where!r} : unsigned (no {mf.SIGNATURE_KEY}) but a signing key was given (key= or "
                    f"${mf.KEY_ENV}); its origin cannot be checked. Re-save it with Surrogate.save(path, "
                    "key=...) from a trusted copy, or pass allow_unsigned=True to accept unsigned files")
        elif not mf.signature_ok(manifest, secret):
            raise SurrogateFileError(
                f"{where!r} : field {mf.SIGNATURE_KEY} does not verify with the given key; the manifest "
                "or the weights were changed after signing, or it was signed with another key. Do not use "
                "it: load a trusted copy, or pass the key it was signed with")
    mf.check_manifest(manifest, where)
    weights_path = folder / mf.WEIGHTS_FILE
    if not weights_path.is_file():
        raise SurrogateFileError(f"{str(weights_path)!r} : weights file missing")
    size = weights_path.stat().st_size
    if size != manifest["weights"]["bytes"]:
        raise SurrogateFileError(f"{str(weights_path)!r} : {size} bytes, the manifest says "
                                 f"{manifest['weights']['bytes']}; the weights were altered or truncated")
    actual = mf.sha256_file(weights_path)
    if actual != manifest["weights"]["sha256"]:
        raise SurrogateFileError(f"{str(weights_path)!r} : sha256 {actual[:16]}... does not match the manifest's "
                                 f"{manifest['weights']['sha256'][:16]}...; the weights were altered or truncated")
    try:
        from safetensors.numpy import load_file

        tensors = load_file(str(weights_path))
    except Exception as exc:
        raise SurrogateFileError(f"{str(weights_path)!r} : not a readable safetensors file ({exc})") from None
    try:
        schema = Schema.from_dict(manifest["schema"])
        surrogate = cls(
            schema=schema,
            tolerance=Tolerance.from_dict(manifest["tolerance"]),
            input_encoder=InputEncoder.from_dict(manifest["input_encoder"]),
            output_encoder=OutputEncoder.from_dict(manifest["output_encoder"]),
            weights=ModelWeights.from_tensors(manifest["model"], tensors),
            signature=manifest["signature"],
            function=manifest["function"],
            source_hash=manifest.get("source_hash", ""),
            metrics=SurrogateMetrics.from_dict(manifest.get("metrics", {})),
            manifest=manifest,
        )
        if manifest.get("calibration") is not None:
            from ._calibration import Calibration

            surrogate.calibration = Calibration.from_dict(manifest["calibration"])
        if manifest.get(mf.EXPRESSIONS_KEY):  # validated data (check_manifest), never code
            surrogate._use_expressions(_hybrid.from_data(manifest[mf.EXPRESSIONS_KEY]))
        if manifest.get(mf.PROGRAM_KEY) is not None:  # validated data (check_manifest), never code
            from probes._program import ExactProgram

            surrogate._use_program(ExactProgram.from_dict(manifest[mf.PROGRAM_KEY]))
    except SurrogateFileError:
        raise
    except Exception as exc:
        raise SurrogateFileError(f"{str(folder)!r} : inconsistent surrogate files ({type(exc).__name__}: {exc})") from None
    check_source(surrogate, fn)
    return surrogate


def check_source(surrogate: Any, fn: Any) -> None:
    """Warn when `fn`'s source differs from the one the surrogate was trained on. Only the `fn`
    the caller passes is read: the function named in the file is never imported."""
    if fn is None:
        return
    try:
        current = source_hash(fn)
    except Exception:
        return
    if surrogate.source_hash and current != surrogate.source_hash:
        warnings.warn(
            f"{surrogate.function}: the surrogate was trained on source hash {surrogate.source_hash} but the "
            f"function now has source hash {current}; its answers may no longer match. Refit with replace.fit",
            UserWarning, stacklevel=4,  # the caller of Surrogate.load
        )
