"""The frames directory of a video run appears whole: a kill while it is made leaves nothing the next run refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nst_rt.video.frames import MANIFEST, FrameStore, frames_dir


class Killed(BaseException):
    pass


def test_a_kill_while_the_manifest_is_written_leaves_no_directory_to_refuse(tmp_path, monkeypatch):
    directory = frames_dir(tmp_path / "out.mp4")
    real_write = Path.write_text

    def killed_writing_the_manifest(self, *args, **kwargs):
        if self.name == MANIFEST:
            real_write(self, "{\"partial", encoding="utf-8")
            raise Killed
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", killed_writing_the_manifest)
    with pytest.raises(Killed):
        FrameStore(directory, {"size": 48})
    monkeypatch.setattr(Path, "write_text", real_write)
    assert not directory.exists()
    assert not list(tmp_path.iterdir())  # no staging directory left either

    store = FrameStore(directory, {"size": 48})  # the next run starts, it is not refused
    store.save(0, np.zeros((8, 8, 3), np.float32))
    again = FrameStore(directory, {"size": 48})
    assert again.done() == 1 and (directory / MANIFEST).is_file()
