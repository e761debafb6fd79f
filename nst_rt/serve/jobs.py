"""The job queue: one worker thread runs one stylization at a time, the others wait in order.

The worker runs ``Stylizer.run`` with a progress callback that only stores the latest ``Progress`` (the
preview is encoded when a client asks for it, from that progress's own copy of the iterate, so the
optimiser is never held back) and raises ``KeyboardInterrupt`` once a stop is asked: the pipeline then
returns its best image so far, which is saved like a finished one.
"""

from __future__ import annotations

import io
import math
import shutil
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ..pipeline.options import Options

FINAL = ("done", "stopped", "failed")


@dataclass
class Job:
    id: str
    options: Options
    content: object  # (H, W, 3) float32 arrays, decoded when the job was posted
    styles: list
    status: str = "queued"
    error: str | None = None
    progress: object = None  # the latest nst_rt.pipeline.stylizer.Progress
    result: Path | None = None
    finished: float = 0.0
    version: int = 0  # bumped on every change, so event streams send only what is new
    stop: bool = False
    preview: tuple = (None, b"")  # (progress it was made from, JPEG bytes)
    settings: dict = field(default_factory=dict)

    def snapshot(self, position: int | None = None) -> dict:
        """The job object the API answers; ``done`` and ``total`` count iterations over all scales."""
        p = self.progress
        out = {"id": self.id, "status": self.status, "position": position, "scale": None, "scales": None,
               "iteration": None, "iterations": None, "done": None, "total": None, "loss": None, "terms": {},
               "rate": None, "eta_s": None, "error": self.error, "settings": self.settings,
               "has_result": self.result is not None}
        if p is not None:
            done = sum(s.iterations for s in p.stages[:p.scale - 1]) + p.iteration
            total = sum(s.iterations for s in p.stages) or p.iterations
            rate = done / p.elapsed if p.elapsed > 0 and done else None
            out.update(scale=p.scale, scales=p.scales, iteration=p.iteration, iterations=p.iterations, done=done,
                       total=total, loss=p.loss if math.isfinite(p.loss) else None,
                       terms={k: float(v) for k, v in p.terms.items()}, rate=rate,
                       eta_s=(total - done) / rate if rate and self.status == "running" else None)
        return out


class Jobs:
    """The queue, the worker and the results directory (``keep`` finished results at most)."""

    def __init__(self, base: Options, results_dir: Path, keep: int = 50, stylizer_factory=None):
        self.base, self.results_dir, self.keep = base, Path(results_dir), keep
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, Job] = {}
        self.queue: deque[Job] = deque()
        self.changed = threading.Condition()
        self._closing = False
        self._stylizers: dict = {}
        self._factory = stylizer_factory
        self._worker = threading.Thread(target=self._work, name="nst-rt-serve-worker", daemon=True)
        self._worker.start()

    # -- what the routes call -------------------------------------------------------------------------
    def submit(self, options: Options, content, styles, settings: dict) -> Job:
        job = Job(str(uuid.uuid4()), options, content, styles, settings=settings)
        with self.changed:
            self.jobs[job.id] = job
            if self._closing:  # posted while the server shuts down: it will not run
                self._finish(job, "stopped", "the server is shutting down; post the job again once it is back")
            else:
                self.queue.append(job)
                self.changed.notify_all()
        return job

    def position(self, job: Job) -> int | None:
        """0 for the running job, 1 for the next, ...; None once finished."""
        with self.changed:
            if job.status == "running":
                return 0
            if job.status == "queued":
                return 1 + self.queue.index(job)
            return None

    def snapshot(self, job: Job) -> dict:
        return job.snapshot(self.position(job))

    def cancel(self, job: Job) -> None:
        """Stop a running job (its best image is kept) or remove a queued one."""
        with self.changed:
            if job.status == "queued":
                self.queue.remove(job)
                self._finish(job, "stopped")
                self._moved()
            elif job.status == "running":
                job.stop = True

    def preview(self, job: Job) -> bytes | None:
        """The current iterate as a JPEG, encoded at most once per iteration."""
        p = job.progress
        if p is None:
            return None
        made_from, data = job.preview
        if made_from is not p:
            from PIL import Image

            from ..io import images

            buffer = io.BytesIO()
            Image.fromarray(images.to_uint8(p.image())).save(buffer, "JPEG", quality=85)
            data = buffer.getvalue()
            job.preview = (p, data)
        return data

    def stop_all(self) -> None:
        """Stop the running job (its best image is saved as it ends), drop the queue, take no more jobs;
        returns without waiting for the worker (the server's signal handler has it called)."""
        with self.changed:
            self._closing = True
            while self.queue:
                self._finish(self.queue.popleft(), "stopped")
            for job in self.jobs.values():
                if job.status == "running":
                    job.stop = True
            self.changed.notify_all()

    def close(self, timeout: float = 600.0) -> None:
        """``stop_all``, then wait for the worker to save the stopped job's image and end."""
        self.stop_all()
        self._worker.join(timeout)

    # -- the worker -----------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self.changed:
                while not self.queue and not self._closing:
                    self.changed.wait()
                if self._closing:
                    return
                job = self.queue.popleft()
                job.status = "running"
                self._bump(job)
                self._moved()
            self._run(job)

    def _stylizer(self, options: Options):
        key = (str(options.model), str(options.models_dir), options.provider, options.precision, options.threads)
        if key not in self._stylizers:
            from ..pipeline.stylizer import Stylizer

            self._stylizers[key] = (self._factory or Stylizer)(options)
        return self._stylizers[key].derive(**{f: getattr(options, f) for f in options.__dataclass_fields__})

    def _run(self, job: Job) -> None:
        from ..errors import NstError

        def on_progress(progress):
            if job.stop:
                raise KeyboardInterrupt
            with self.changed:
                job.progress = progress
                self._bump(job)

        try:
            result = self._stylizer(job.options).run(job.content, job.styles, on_progress)
        except KeyboardInterrupt:  # stopped before the first image
            with self.changed:
                self._finish(job, "stopped")
            return
        except NstError as exc:
            with self.changed:
                self._finish(job, "failed", str(exc))
            return
        except Exception as exc:  # noqa: BLE001  (a bug must not take the worker down)
            with self.changed:
                self._finish(job, "failed", f"internal error: {type(exc).__name__}: {exc}")
            return
        folder = self.results_dir / job.id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "result.png"
        partial = folder / "result.png.part"
        result.to_pil().save(partial, "PNG")
        partial.replace(path)
        with self.changed:
            job.result = path
            self._finish(job, "stopped" if result.interrupted else "done")

    def _finish(self, job: Job, status: str, error: str | None = None) -> None:
        """Called holding ``changed``."""
        job.status, job.error, job.finished = status, error, time.time()
        job.content, job.styles = None, []
        self._bump(job)
        finished = sorted((j for j in self.jobs.values() if j.status in FINAL), key=lambda j: j.finished)
        for old in finished[:max(0, len(finished) - self.keep)]:
            del self.jobs[old.id]
            shutil.rmtree(self.results_dir / old.id, ignore_errors=True)

    def _moved(self) -> None:
        """The queue moved up: each waiting job has a new position to tell its watchers (holding ``changed``)."""
        for waiting in self.queue:
            self._bump(waiting)

    def _bump(self, job: Job) -> None:
        job.version += 1
        self.changed.notify_all()

