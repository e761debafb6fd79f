"""Write the two graphs of an export with their weights stored once: one ONNX external-data file that both
graphs reference, tensor by tensor (the same name, offset and length in each graph).

Each tensor starts on a multiple of ALIGN bytes, so that ONNX Runtime can map it from the file as it is.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx
from onnx.external_data_helper import set_external_data

from nst_rt.model_format import WEIGHTS_FILE_SHA256, WEIGHTS_FILE_SIZE

ALIGN = 4096  # the page size: a tensor mapped from the file needs no copy to be aligned


def save_shared(models: dict[str, onnx.ModelProto], directory: Path, weights_file: str,
                names: set[str]) -> list[Path]:
    """Save ``models`` (file name -> model) into ``directory``, moving the initializers in ``names`` into
    ``directory / weights_file``; returns the paths written. A name in several models must hold the same bytes.
    Each model's metadata gets the weights file's size and sha256, which the runtime checks it against."""
    placed: dict[str, tuple[int, int, bytes]] = {}
    weights_path = directory / weights_file
    digest = hashlib.sha256()
    with open(weights_path, "wb") as handle:
        for model in models.values():
            for tensor in model.graph.initializer:
                if tensor.name not in names:
                    continue
                data = tensor.raw_data
                if not data:
                    raise ValueError(f"initializer {tensor.name} has no raw data to move out")
                if tensor.name in placed:
                    offset, length, first = placed[tensor.name]
                    if first != data:
                        raise ValueError(f"the graphs hold different values under the name {tensor.name}")
                else:
                    offset = -(-handle.tell() // ALIGN) * ALIGN
                    for chunk in (b"\0" * (offset - handle.tell()), data):
                        handle.write(chunk)
                        digest.update(chunk)
                    length = len(data)
                    placed[tensor.name] = (offset, length, data)
                set_external_data(tensor, weights_file, offset, length)  # sets data_location to EXTERNAL too
                tensor.ClearField("raw_data")
    missing = names - set(placed)
    if missing:
        raise ValueError(f"no graph holds the weights {', '.join(sorted(missing))}")
    paths = []
    for file_name, model in models.items():
        for key, value in ((WEIGHTS_FILE_SIZE, str(weights_path.stat().st_size)),
                           (WEIGHTS_FILE_SHA256, digest.hexdigest())):
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        (directory / file_name).write_bytes(model.SerializeToString())
        paths.append(directory / file_name)
    return paths + [weights_path]
