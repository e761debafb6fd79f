"""weights.bin is checked at load against the size and sha256 its export recorded in the graphs' metadata; exports
made before those were recorded still load."""

from __future__ import annotations

import hashlib
import shutil

import onnx
import pytest

from cli_helpers import assert_one_error_line, invoke, paths, stylize_args  # noqa: F401 (paths: fixture)
from nst_rt.errors import ModelError
from nst_rt.model_format import (FEATURES_FILE, OBJECTIVE_FILE, VJP_FILE, WEIGHTS_FILE, WEIGHTS_FILE_SHA256,
                                 WEIGHTS_FILE_SIZE)
from nst_rt.network.model import load_model
from nst_rt.network.onnx_props import read_props

GRAPHS = (FEATURES_FILE, VJP_FILE, OBJECTIVE_FILE)


@pytest.fixture
def export_copy(export_path, tmp_path):
    """A copy of the VGG-19 export, to damage: ``tmp_path/models/vgg19``."""
    copy = tmp_path / "models" / "vgg19"
    shutil.copytree(export_path(), copy)
    return copy


def test_every_graph_records_the_size_and_sha256_of_the_weights_file_as_written(export_path):
    weights = (export_path() / WEIGHTS_FILE).read_bytes()
    for graph in GRAPHS:
        props = {p.key: p.value for p in onnx.load(export_path() / graph, load_external_data=False).metadata_props}
        assert props[WEIGHTS_FILE_SIZE] == str(len(weights))
        assert props[WEIGHTS_FILE_SHA256] == hashlib.sha256(weights).hexdigest()
        assert read_props(export_path() / graph) == props  # the runtime's reader, against onnx's


def test_a_truncated_weights_file_is_named_with_the_re_export_command(export_copy):
    weights = export_copy / WEIGHTS_FILE
    size = weights.stat().st_size
    with open(weights, "r+b") as f:
        f.truncate(size - 4096)
    with pytest.raises(ModelError) as caught:
        load_model(export_copy)
    message = str(caught.value)
    assert f"{weights} is {size - 4096} bytes, the export wrote {size}" in message
    assert f"nst-rt export vgg19 --out {export_copy.parent} --force" in message and "\n" not in message


def test_a_corrupt_weights_file_of_the_right_size_is_refused(export_copy):
    weights = export_copy / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x40  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=f"{WEIGHTS_FILE} does not hold the bytes the export wrote .*"
                                         "nst-rt export vgg19 .* --force"):
        load_model(export_copy)
    load_model(export_copy, verify=False)  # the size alone is right


def test_the_command_line_refuses_a_corrupt_model_in_one_line(export_copy, paths):
    weights = export_copy / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    result = invoke(*stylize_args(paths, export_copy.parent))
    assert_one_error_line(result, str(weights), "sha256 differs", "--force")
    assert not paths.output.exists()


def test_an_export_made_before_the_weights_file_was_recorded_still_loads(export_copy):
    for graph in GRAPHS:
        model = onnx.load(export_copy / graph, load_external_data=False)
        kept = [(p.key, p.value) for p in model.metadata_props if p.key not in (WEIGHTS_FILE_SIZE, WEIGHTS_FILE_SHA256)]
        del model.metadata_props[:]
        for key, value in kept:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        (export_copy / graph).write_bytes(model.SerializeToString())
    assert WEIGHTS_FILE_SIZE not in read_props(export_copy / FEATURES_FILE)
    assert load_model(export_copy).architecture == "vgg19"


def test_info_shows_a_corrupt_weights_file_as_unusable(export_copy):
    weights = export_copy / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[0] ^= 0x01
    weights.write_bytes(bytes(data))
    result = invoke("info", "--models-dir", export_copy.parent)
    assert result.exit_code == 0, result.output
    assert f"vgg19 ({export_copy}): unusable: {weights} does not hold the bytes the export wrote" in \
        " ".join(result.stdout.split())
