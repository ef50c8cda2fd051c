"""A saved surrogate is data: loading a crafted or tampered file imports nothing, runs nothing,
and with a signing key accepts only what was signed.

Each crafted file starts from a real tiny surrogate; the manifest is edited and, where the test
says so, its `manifest_sha256` (and the weights' sha256) recomputed, as someone with write access
to the file could. A sentinel module on a temporary `sys.path` entry writes a marker file when it
is imported; no marker may appear.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import uuid

import numpy as np
import pytest

from probes import InvalidArgument, Schema, SchemaError, SurrogateFileError, Tolerance
from replace import Surrogate, fit
from replace import _manifest as mf

KEY = b"0123456789abcdef-test-key"


def tiny(x: float, y: float) -> float:
    return 2.0 * x - y


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny fitted surrogate saved unsigned and signed (fit once for the module)."""
    schema = Schema.from_function(tiny, x=(0.0, 1.0), y=(0.0, 1.0))
    surrogate = fit(tiny, schema=schema, tolerance=Tolerance(abs=0.05), budget_s=2, seed=0, progress=False,
                    budget_clock="work")
    root = tmp_path_factory.mktemp("saved")
    surrogate.save(root / "plain")
    surrogate.save(root / "signed", key=KEY)
    return root


@pytest.fixture
def copy(saved, tmp_path):
    def make(which: str = "plain"):
        target = tmp_path / f"{which}-{uuid.uuid4().hex[:8]}"
        shutil.copytree(saved / which, target)
        return target
    return make


def read(folder):
    return json.loads((folder / "manifest.json").read_text())


def write(folder, manifest, *, rehash: bool = True):
    """Write `manifest`, with a recomputed checksum unless `rehash` is False."""
    if rehash:
        manifest["manifest_sha256"] = mf.manifest_digest(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))


@pytest.fixture
def sentinel(tmp_path, monkeypatch):
    """A module (fresh name) that writes `marker` when imported; yields (name, marker)."""
    name = f"neuroswap_sentinel_{uuid.uuid4().hex[:12]}"
    folder = tmp_path / "sentinel_path"
    folder.mkdir()
    marker = tmp_path / "imported.marker"
    (folder / f"{name}.py").write_text(
        f"import enum\nopen({str(marker)!r}, 'w').write('imported')\n\n"
        "def fn(x, y):\n    return 0.0\n\n"
        "class Zone(enum.Enum):\n    A = 'a'\n")
    monkeypatch.syspath_prepend(str(folder))
    yield name, marker
    sys.modules.pop(name, None)


def assert_not_imported(name, marker):
    assert not marker.exists(), "the module named in the file was imported"
    assert name not in sys.modules


# -- nothing the file names is imported --------------------------------------------------------

def test_load_does_not_import_the_function_the_manifest_names(copy, sentinel):
    name, marker = sentinel
    folder = copy()
    manifest = read(folder)
    manifest["function"] = f"{name}:fn"
    write(folder, manifest)
    loaded = Surrogate.load(folder)  # a well-formed name: loads, imports nothing
    assert loaded.function == f"{name}:fn"
    assert_not_imported(name, marker)


def test_the_source_check_reads_only_the_fn_passed(copy, sentinel):
    name, marker = sentinel
    folder = copy()
    manifest = read(folder)
    manifest["function"] = f"{name}:fn"
    write(folder, manifest)

    def tiny(x: float, y: float) -> float:  # edited since the surrogate was trained
        return 2.0 * x - y + 1.0

    with pytest.warns(UserWarning, match="source hash"):
        Surrogate.load(folder, fn=tiny)
    assert_not_imported(name, marker)


def test_an_enum_value_naming_an_unimported_module_is_refused_not_imported(copy, sentinel):
    name, marker = sentinel
    folder = copy()
    manifest = read(folder)
    manifest["signature"][1]["default"] = {"enum": f"{name}:Zone", "name": "A"}
    write(folder, manifest)
    with pytest.raises(SurrogateFileError, match=r"signature\[1\]\.default\.enum.*not imported"):
        Surrogate.load(folder)
    assert_not_imported(name, marker)


# -- manifest fields are checked before use ------------------------------------------------------

@pytest.mark.parametrize("function", [
    "os:system; x", "os:system('echo hi')", "__import__('os').system", "os", "a:b:c", "os:", ":system",
    "os.path :join", "os:system\n", "class:fn", 5, None, ["os", "system"],
])
def test_a_function_name_that_is_not_module_colon_qualname_is_refused(copy, function):
    folder = copy()
    manifest = read(folder)
    manifest["function"] = function
    write(folder, manifest)
    with pytest.raises(SurrogateFileError) as info:
        Surrogate.load(folder)
    text = str(info.value)
    assert "manifest.json" in text and "function=" in text and repr(function)[:20] in text


@pytest.mark.parametrize("field_name", [
    "x=__import__('os').system('echo hi')", "x, y", "class", "", "1x", "x y", 7,
])
def test_schema_field_names_that_are_code_are_refused(copy, field_name):
    folder = copy()
    manifest = read(folder)
    manifest["schema"]["fields"][0]["name"] = field_name
    write(folder, manifest)
    with pytest.raises(SurrogateFileError, match=r"schema\.fields\[0\]\.name"):
        Surrogate.load(folder)
    data = read(folder)["schema"]
    with pytest.raises(SchemaError, match="field name"):
        Schema.from_dict(data)


def test_schema_from_dict_refuses_duplicate_field_names(copy):
    data = read(copy())["schema"]
    data["fields"][1]["name"] = data["fields"][0]["name"]
    with pytest.raises(SchemaError, match="more than once"):
        Schema.from_dict(data)


@pytest.mark.parametrize("edit, field", [
    (lambda m: m["signature"][0].__setitem__("name", "x=os.system('x')"), r"signature\[0\]\.name"),
    (lambda m: m["signature"][0].__setitem__("name", "lambda"), r"signature\[0\]\.name"),
    (lambda m: m["signature"][0].__setitem__("kind", "VAR_POSITIONAL"), r"signature\[0\]\.kind"),
    (lambda m: m["signature"][0].__setitem__("kind", "x): pass\nimport os\ndef f("), r"signature\[0\]\.kind"),
    (lambda m: m["signature"][0].__setitem__("annotation", "os.system"), r"signature\[0\]"),
    (lambda m: m.__setitem__("evil", {"code": "import os"}), "evil"),
    (lambda m: m["weights"].__setitem__("file", "../../etc/passwd"), r"weights\.file"),
    (lambda m: m["output_encoder"].__setitem__("classes", [{"kind": "raise", "error": {
        "type": "os.system('x')", "message": ""}}]), r"output_encoder\.classes\[0\]\.error\.type"),
    (lambda m: m["schema"]["output"].__setitem__("error_types", ["os; import x"]),
     r"schema\.output\.error_types\[0\]"),
    (lambda m: m["tolerance"].__setitem__("abs", "0.1"), r"tolerance\.abs"),
    (lambda m: m.__setitem__("metrics", [1, 2]), "metrics"),
])
def test_other_crafted_fields_are_refused_naming_the_field(copy, edit, field):
    folder = copy()
    manifest = read(folder)
    edit(manifest)
    write(folder, manifest)
    with pytest.raises(SurrogateFileError, match=field) as info:
        Surrogate.load(folder)
    assert "manifest.json" in str(info.value)


def test_plain_json_calibration_and_guard_fields_are_accepted(copy):
    folder = copy()
    manifest = read(folder)
    manifest["calibration"] = {"rows": [[0.1, 0.2], [0.3, None]], "method": "split", "ok": True}
    manifest["guard"] = {"threshold": 0.25, "levels": [1, 2, 3]}
    manifest["training"] = None
    write(folder, manifest)
    loaded = Surrogate.load(folder)
    assert loaded.manifest["guard"]["threshold"] == 0.25


def test_save_refuses_what_load_would_refuse(saved, tmp_path):
    surrogate = Surrogate.load(saved / "plain")
    surrogate.manifest["evil"] = "not a manifest field"
    with pytest.raises(SurrogateFileError, match="evil"):
        surrogate.save(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_deeply_nested_manifest_is_a_file_error(copy):
    folder = copy()
    (folder / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(SurrogateFileError, match="manifest.json"):
        Surrogate.load(folder)


# -- truncation -----------------------------------------------------------------------------------

def test_truncated_weights_are_a_file_error_even_with_recomputed_digests(copy):
    folder = copy()
    weights = folder / "weights.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 3])
    with pytest.raises(SurrogateFileError, match="weights.safetensors"):
        Surrogate.load(folder)
    manifest = read(folder)  # make the manifest agree with the truncated file
    manifest["weights"]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    manifest["weights"]["bytes"] = weights.stat().st_size
    write(folder, manifest)
    with pytest.raises(SurrogateFileError, match="weights.safetensors"):
        Surrogate.load(folder)


def test_a_truncated_manifest_is_a_file_error(copy):
    folder = copy("signed")
    text = (folder / "manifest.json").read_text()
    (folder / "manifest.json").write_text(text[: len(text) // 2])
    with pytest.raises(SurrogateFileError, match="manifest.json"):
        Surrogate.load(folder, key=KEY)


# -- signing ----------------------------------------------------------------------------------------

def test_a_signed_file_loads_with_its_key_and_without_one(saved):
    manifest = read(saved / "signed")
    assert len(manifest[mf.SIGNATURE_KEY]) == 64
    a = Surrogate.load(saved / "signed", key=KEY)
    b = Surrogate.load(saved / "signed", key=KEY.decode())  # str keys are their UTF-8 bytes
    c = Surrogate.load(saved / "signed")  # no key: nothing to check the signature against
    assert a(0.5, 0.25) == b(0.5, 0.25) == c(0.5, 0.25)


def test_an_edited_manifest_with_recomputed_checksum_is_refused_with_the_key(copy):
    folder = copy("signed")
    manifest = read(folder)
    manifest["tolerance"]["abs"] = 10.0  # claims a looser contract
    write(folder, manifest)
    Surrogate.load(folder)  # the checksum alone cannot tell
    with pytest.raises(SurrogateFileError, match=f"manifest.json.*{mf.SIGNATURE_KEY} does not verify"):
        Surrogate.load(folder, key=KEY)


def test_swapped_weights_with_recomputed_digests_are_refused_with_the_key(copy):
    folder = copy("signed")
    from safetensors.numpy import load_file, save_file

    weights = folder / "weights.safetensors"
    tensors = load_file(str(weights))
    first = sorted(tensors)[0]
    tensors[first] = (tensors[first] + np.float32(0.5)).astype(tensors[first].dtype)
    save_file(tensors, str(weights), metadata={"format": mf.FORMAT})
    manifest = read(folder)
    manifest["weights"]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    manifest["weights"]["bytes"] = weights.stat().st_size
    write(folder, manifest)
    Surrogate.load(folder)  # consistent to the checksums: without a key it is accepted
    with pytest.raises(SurrogateFileError, match="does not verify"):
        Surrogate.load(folder, key=KEY)


def test_a_stripped_signature_is_refused_as_unsigned(copy):
    folder = copy("signed")
    manifest = read(folder)
    del manifest[mf.SIGNATURE_KEY]
    manifest["tolerance"]["abs"] = 10.0
    write(folder, manifest)
    with pytest.raises(SurrogateFileError, match="unsigned"):
        Surrogate.load(folder, key=KEY)


def test_another_key_is_refused(saved):
    with pytest.raises(SurrogateFileError, match="does not verify"):
        Surrogate.load(saved / "signed", key=b"another key entirely")


def test_an_unsigned_file_needs_allow_unsigned_when_a_key_is_given(saved):
    with pytest.raises(SurrogateFileError, match="unsigned.*allow_unsigned=True"):
        Surrogate.load(saved / "plain", key=KEY)
    assert Surrogate.load(saved / "plain", key=KEY, allow_unsigned=True) is not None


def test_the_key_comes_from_the_environment(saved, tmp_path, monkeypatch):
    monkeypatch.setenv(mf.KEY_ENV, KEY.decode())
    with pytest.raises(SurrogateFileError, match="unsigned"):
        Surrogate.load(saved / "plain")
    loaded = Surrogate.load(saved / "signed")
    loaded.save(tmp_path / "resaved")  # signs with the environment's key
    monkeypatch.delenv(mf.KEY_ENV)
    assert Surrogate.load(tmp_path / "resaved", key=KEY) is not None
    with pytest.raises(SurrogateFileError, match="does not verify"):
        Surrogate.load(tmp_path / "resaved", key=b"other")


def test_resaving_without_a_key_drops_the_old_signature(saved, tmp_path):
    loaded = Surrogate.load(saved / "signed", key=KEY)
    loaded.save(tmp_path / "unsigned")
    assert mf.SIGNATURE_KEY not in read(tmp_path / "unsigned")


@pytest.mark.parametrize("key", [b"", "", 12345])
def test_an_empty_or_odd_key_is_an_argument_error(saved, key):
    with pytest.raises(InvalidArgument, match="key="):
        Surrogate.load(saved / "signed", key=key)


def test_schema_from_dict_never_imports_an_enum_module(sentinel):
    """A schema whose category names an enum in a module not yet imported keeps the member's
    name; the module is not imported (Schema.from_json on data from anywhere)."""
    from probes import Schema

    name, marker = sentinel
    data = {"fields": [{"name": "zone", "kind": "categorical",
                        "categories": [{"enum": f"{name}:Zone", "name": "A"}, "B"]}],
            "output": {"kind": "real"}}
    try:
        schema = Schema.from_dict(data)
    except Exception:  # refusing is fine too; importing is not
        schema = None
    assert_not_imported(name, marker)
    if schema is not None:
        assert schema.fields[0].categories == ("A", "B")
