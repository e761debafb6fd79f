"""Checkpoints: a long run's optimiser state saved beside its output every few seconds, and resumed from.

A checkpoint is an uncompressed ``.npz`` file (numpy reads it, no pickle) named after the output,
``OUTPUT.ckpt``. It holds the optimiser's state at an iteration boundary (``intermediate_result.state()``
of :mod:`nst_rt.optimize`: the iterate, its loss and gradient, the L-BFGS pairs or Adam's moments, the
iteration and evaluation counts), the scale it belongs to, what the scales before it did, where a bf16
scale's switch to fp32 stands (:mod:`nst_rt.pipeline.precision_switch`), where the settle stop's count stands
(:mod:`nst_rt.pipeline.settle`), and a fingerprint of the run
(:mod:`nst_rt.pipeline.fingerprint`): hashes of the decoded content, style and init images, every option that changes
the pixels, and the model's metadata (its weights' sha256 among them).

It is written to a hidden temporary file in the same directory, flushed to disk, and renamed over the
previous one, so a kill at any moment leaves either the previous checkpoint or the new one, whole. The
optimiser resumes bit for bit, so a resumed run writes the bytes an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, OptionError
from ..io.atomic import create_temp
from ..io.npz_stream import Stored
from .fingerprint import NOT_FINGERPRINTED, describe_differences, fingerprint  # noqa: F401 (read from here too)

from .options import CHECKPOINT_EVERY as DEFAULT_EVERY  # noqa: E402
# ... and at least this many times the last write's duration apart, so that writing takes at most ~5% of a run
# (a 512 px L-BFGS checkpoint is 640 MB: seconds to write; at 4096 px it would be 64 times that).
WRITE_SHARE = 0.05
SUFFIX = ".ckpt"
# 2 records a bf16 scale's switch to fp32 (``ScaleRun.record``) and the scales before that switched; a format 1
# checkpoint resumes runs that cannot switch (fp32, Adam) as before, and is refused for one that can. 3 records the
# settle stop's state (``Settle.record``); formats 1 and 2 come from runs without the stop (``--settle 0``).
FORMAT = 3
READS = (1, 2, 3)
_SWITCH = "switch_"  # prefix of the current scale's switch state in the file
_SETTLE = "settle_"  # prefix of the current scale's settle state
_STATE = "opt_"  # prefix of the optimiser's arrays in the file
STREAMED = ("s", "y", "x", "jac")  # pairs and image vectors: read straight into the optimiser's buffers


def path_for(output) -> Path:
    """Where the checkpoint of ``output`` goes: beside it, named ``OUTPUT.ckpt``."""
    output = Path(os.fspath(output))
    return output.with_name(output.name + SUFFIX)


@dataclasses.dataclass
class Resumed:
    """What a run continues from: the scale (1-based) and the optimiser's state within it."""

    scale: int
    iterations_before: int  # over the scales before ``scale``
    evaluations_before: int
    stopped_early: dict  # scale -> why it ran fewer iterations, for the scales before
    state: Mapping | None  # for ``minimize(..., resume=state)``; its arrays are read from the file when asked for
    fp32_from: dict = dataclasses.field(default_factory=dict)  # scale -> (iteration, why), for the scales before
    switch: Mapping | None = None  # ScaleRun.record() at the checkpoint (None before format 2)
    settle: Mapping | None = None  # Settle.record() at the checkpoint (None before format 3)

    @property
    def iteration(self) -> int:
        return int(np.asarray(self.state["nit"])) if self.state is not None else 0

    def close(self) -> None:
        """Close the checkpoint file the state is read from (the optimiser has taken what it needs)."""
        if isinstance(self.state, _Prefixed):
            self.state.close()


FROM_THE_START = Resumed(1, 0, 0, {}, None)  # what a run without a checkpoint to continue from does


class Checkpoint:
    """Periodic checkpoints of one run at ``path``, and the decision to resume from one.

    ``every``: seconds between saves (0: no saves; an existing checkpoint can still be resumed from); with
    ``write_share``, saves are also spaced so that writing takes at most that share of the time.
    ``resume``: continue from the checkpoint at ``path`` if there is one (a run of other inputs, options or
    model is refused with what differs); without one the run starts from the beginning.
    ``overwrite``: without ``resume``, an existing checkpoint is deleted and the run starts again; without
    either, an existing checkpoint is refused, since starting over would lose its work.

    ``Stylizer.run(..., checkpoint=...)`` calls :meth:`begin` and saves through :meth:`maybe_save`; the
    caller calls :meth:`remove` once the result is safely written.
    """

    def __init__(self, path, every: float = DEFAULT_EVERY, *, resume: bool = False, overwrite: bool = False,
                 write_share: float | None = WRITE_SHARE):
        self.path = Path(os.fspath(path))
        if not (isinstance(every, (int, float)) and math.isfinite(every) and every >= 0):
            raise OptionError(f"--checkpoint-every must be a number of seconds >= 0 (0: no checkpoints), got {every}")
        self.every, self.resume, self.overwrite, self.write_share = float(every), resume, overwrite, write_share
        self._gap = self.every
        if self.path.is_dir():
            raise CheckpointError(f"checkpoint path '{self.path}' is a directory; move it or choose another output")
        if self.exists and not (resume or overwrite):
            raise CheckpointError(f"'{self.path}' holds a checkpoint of an unfinished run to this output; pass "
                                  "--resume to continue it, or --overwrite to start again")
        self.saved: tuple[int, int] | None = None  # (scale, iteration) of the last checkpoint written or loaded
        self._fingerprint: dict[str, str] = {}
        self._context: dict[str, np.ndarray] = {}
        self._last = time.monotonic()

    @property
    def exists(self) -> bool:
        return os.path.lexists(self.path)

    @property
    def resuming(self) -> bool:
        """Whether the run will continue from a checkpoint (if it matches: :meth:`begin` decides)."""
        return self.resume and self.exists

    def begin(self, options, model_metadata: Mapping[str, str], content: np.ndarray, styles, init,
              masks=None, switching: bool = False) -> Resumed:
        """Fingerprint this run; return where it continues from (``FROM_THE_START`` without a checkpoint).
        ``switching``: the run may switch from bf16 or TF32 to fp32, so a checkpoint must say where its switch stood."""
        self._fingerprint = fingerprint(options, model_metadata, content, styles, init, masks)
        self._last = time.monotonic()
        if not self.resume:
            if self.exists and self.overwrite:
                os.unlink(self.path)
            return FROM_THE_START
        if not self.exists:
            return FROM_THE_START
        try:
            saved = np.load(self.path, allow_pickle=False)
            meta = {name: saved[name] for name in ("format", "fingerprint", "scale", "iterations_before",
                                                   "evaluations_before", "stopped_early")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise CheckpointError(f"cannot read checkpoint '{self.path}' ({detail}); delete it, or pass --overwrite "
                                  "without --resume to start again") from None
        version = int(meta["format"])
        if version not in READS:
            raise CheckpointError(f"checkpoint '{self.path}' is in format {version}, this nst-rt reads "
                                  f"{' and '.join(map(str, READS))}; pass --overwrite without --resume to start again")
        if version < 2 and switching:
            raise CheckpointError(f"checkpoint '{self.path}' is in format {version}, which does not record the bf16 "
                                  "run's switch to fp32; resume it with --precision fp32, or pass --overwrite "
                                  "without --resume to start again")
        differences = describe_differences(json.loads(str(meta["fingerprint"])), self._fingerprint)
        if differences:
            raise CheckpointError(f"checkpoint '{self.path}' is of another run ({differences}); resume with the "
                                  "same inputs, options and model, or pass --overwrite without --resume to start again")
        resumed = Resumed(int(meta["scale"]), int(meta["iterations_before"]), int(meta["evaluations_before"]),
                          {int(k): v for k, v in json.loads(str(meta["stopped_early"])).items()},
                          _Prefixed(saved, _STATE))
        if version >= 2:
            resumed.fp32_from = {int(k): tuple(v) for k, v in json.loads(str(saved["fp32_from"])).items()}
            resumed.switch = {name: saved[_SWITCH + name] for name in ("switched_at", "switch_reason", "watch_nfev")}
        if version >= 3:
            resumed.settle = {name[len(_SETTLE):]: saved[name] for name in saved.files if name.startswith(_SETTLE)}
        self.saved = (resumed.scale, resumed.iteration)
        return resumed

    def position(self) -> tuple[int, int] | None:
        """(scale, iteration) of the checkpoint on disk, or None; read from the file, which a stop signal during
        a save may or may not have replaced."""
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                return int(saved["scale"]), int(saved[_STATE + "nit"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None

    def enter_scale(self, scale: int, iterations_before: int, evaluations_before: int, stopped_early: dict,
                    fp32_from: dict | None = None) -> None:
        """Record where the run is, for the checkpoints written during this scale."""
        self._context = {"scale": np.int64(scale), "iterations_before": np.int64(iterations_before),
                         "evaluations_before": np.int64(evaluations_before),
                         "stopped_early": np.array(json.dumps({str(k): v for k, v in stopped_early.items()})),
                         "fp32_from": np.array(json.dumps({str(k): v for k, v in (fp32_from or {}).items()}))}

    def maybe_save(self, intermediate, switch=None, settle=None) -> bool:
        """Write a checkpoint from the optimiser's callback argument if ``every`` seconds have passed; ``switch()``
        gives the scale's switch state (``ScaleRun.record``), ``settle()`` its settle stop's (``Settle.record``)."""
        if not self.every or time.monotonic() - self._last < self._gap:
            return False
        started = time.monotonic()
        state = intermediate.state(copy=False)  # views: written straight to the file, no second copy in memory
        switch = switch() if switch is not None else {"switched_at": np.int64(-1), "switch_reason": np.array(""),
                                                      "watch_nfev": np.zeros(0, np.int64)}
        arrays = {"format": np.int64(FORMAT), "fingerprint": np.array(json.dumps(self._fingerprint)),
                  **self._context, **{_SWITCH + name: value for name, value in switch.items()},
                  **{_SETTLE + name: value for name, value in (settle() if settle is not None else {}).items()},
                  **{_STATE + name: value for name, value in state.items()}}
        self._write(arrays)
        self.saved = (int(self._context["scale"]), int(state["nit"]))
        self._last = time.monotonic()
        self._gap = max(self.every, (self._last - started) / self.write_share) if self.write_share else self.every
        return True

    def remove(self) -> None:
        """Delete the checkpoint (the run's result is written) and any temporary file a killed save left."""
        for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            leftover.unlink(missing_ok=True)
        if self.exists:
            os.unlink(self.path)

    def _write(self, arrays: dict) -> None:
        tmp = None
        try:
            fd, tmp = create_temp(self.path)
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            _fsync_directory(self.path.parent)
        except BaseException as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise CheckpointError(f"could not write checkpoint '{self.path}' ({exc.strerror or exc}); free "
                                      "some space or pass --checkpoint-every 0") from None
            raise


def terms_of(objective, result) -> dict:
    """The terms of the point ``minimize`` returned. A resumed run can return a point evaluated before the checkpoint
    (at a scale's last iteration, or Adam's best point), which this process's objective has not seen: it is
    evaluated again (the same arithmetic gives the same terms)."""
    try:
        return objective.terms_at(result.fun)
    except KeyError:
        objective(result.x)
        return objective.terms_at(result.fun)


class _Prefixed(Mapping):
    """The arrays of ``npz`` whose names start with ``prefix``, without it; each read when asked for."""

    def __init__(self, npz, prefix: str):
        self._npz, self._prefix = npz, prefix
        self._names = [name[len(prefix):] for name in npz.files if name.startswith(prefix)]

    def __getitem__(self, name: str):
        if name not in self._names:
            raise KeyError(name)
        if name in STREAMED:
            return Stored(self._npz, self._prefix + name)
        return self._npz[self._prefix + name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def close(self) -> None:
        self._npz.close()

    def __len__(self) -> int:
        return len(self._names)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not every platform can open a directory (Windows cannot)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
