"""The job queue: one worker thread runs one stylization at a time, the others wait in order (at most
``max_queue`` of them, each holding its pictures' bytes only).

The worker decodes a job's pictures when it takes the job up and runs ``Stylizer.run`` with a progress
callback that only stores the latest ``Progress`` (the preview is encoded when a client asks for it, from that
progress's own copy of the iterate, so the optimiser is never held back) and raises ``KeyboardInterrupt`` once
a stop is asked; the same stop is asked between the run's setup steps. The pipeline then returns its best image
so far, which is saved like a finished one. Whatever goes wrong in a job fails that job, never the worker; a
finished job keeps its record, its result file and its last preview, not its arrays.
"""

from __future__ import annotations

import io
import math
import shutil
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..pipeline.options import Options
from .pictures import decode
from .refused import Refused

FINAL = ("done", "stopped", "failed")


@dataclass
class Job:
    id: str
    options: Options
    pictures: list  # pictures.Picture: the content, then the styles (their bytes; decoded when the job runs)
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
        status = "stopping" if self.stop and self.status == "running" else self.status
        out = {"id": self.id, "status": status, "position": position, "scale": None, "scales": None,
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
                       eta_s=(total - done) / rate if rate and status == "running" else None)
        return out


class Jobs:
    """The queue, the worker and the results directory (``keep`` finished results at most)."""

    def __init__(self, base: Options, results_dir: Path, keep: int = 50, stylizer_factory=None, max_queue: int = 8):
        self.base, self.results_dir, self.keep, self.max_queue = base, Path(results_dir), keep, max_queue
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, Job] = {}
        self.queue: deque[Job] = deque()
        self.changed = threading.Condition()
        self._closing = False
        self._stylizers: dict = {}
        self._loading = threading.Lock()
        self._factory = stylizer_factory
        self._worker = threading.Thread(target=self._work, name="nst-rt-serve-worker", daemon=True)
        self._worker.start()

    # -- what the routes call -------------------------------------------------------------------------
    def check_room(self) -> None:
        """Refuse (429) a job the queue has no room for."""
        if len(self.queue) >= self.max_queue:
            raise Refused(429, f"the queue is full ({self.max_queue} jobs wait); post again once one has run, or "
                               "start the server with a larger --max-queue")

    def submit(self, options: Options, pictures: list, settings: dict) -> Job:
        job = Job(str(uuid.uuid4()), options, pictures, settings=settings)
        with self.changed:
            if self._closing:  # posted while the server shuts down: it will not run
                self.jobs[job.id] = job
                self._finish(job, "stopped", "the server is shutting down; post the job again once it is back")
            else:
                self.check_room()
                self.jobs[job.id] = job
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
        if made_from is not p and p.image is not None:  # (None once the job finished: its preview is kept)
            from PIL import Image

            from ..io import images

            buffer = io.BytesIO()
            Image.fromarray(images.to_uint8(p.image())).save(buffer, "JPEG", quality=85)
            data = buffer.getvalue()
            job.preview = (p, data)
        return data or None

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
            try:
                self._run(job)
            except BaseException as exc:  # noqa: BLE001  (whatever a job raises, the worker takes the next one)
                with self.changed:
                    if job.status not in FINAL:
                        self._finish(job, "failed", f"internal error: {type(exc).__name__}: {exc}")

    def stylizer(self, options: Options):
        """The server's loaded Stylizer (one per model, provider, precision and threads, all fixed at start),
        with ``options``' other settings."""
        key = (str(options.model), str(options.models_dir), options.provider, options.precision, options.threads)
        with self._loading:
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
            arrays = [decode(p, self.results_dir) for p in job.pictures if not job.stop]
            if job.stop:
                raise KeyboardInterrupt
            job.pictures = []
            result = self.stylizer(job.options).run(arrays[0], arrays[1:], on_progress, should_stop=lambda: job.stop)
            del arrays
            job.result = self._save(job, result)
            status, error = "stopped" if result.interrupted else "done", None
        except KeyboardInterrupt:  # stopped before the first image
            status, error = "stopped", None
        except NstError as exc:
            status, error = "failed", str(exc)
        except OSError as exc:  # e.g. the results directory went or became unwritable while it saved
            status, error = "failed", f"the result could not be saved: {exc}"
        except Exception as exc:  # noqa: BLE001  (a bug must not take the worker down)
            status, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        self._release(job)
        with self.changed:
            self._finish(job, status, error)

    def _save(self, job: Job, result) -> Path:
        folder = self.results_dir / job.id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "result.png"
        partial = folder / "result.png.part"
        try:
            result.to_pil().save(partial, "PNG")
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return path

    def _release(self, job: Job) -> None:
        """Drop what the last progress holds (the run's full-size content and iterate, through ``image``),
        keeping its numbers and its preview, encoded now."""
        p = job.progress
        if p is None or p.image is None:
            return
        try:
            data = self.preview(job)
        except Exception:  # noqa: BLE001  (no preview is no reason to lose the result)
            data = b""
        kept = replace(p, image=None)
        job.progress, job.preview = kept, (kept, data)

    def _finish(self, job: Job, status: str, error: str | None = None) -> None:
        """Called holding ``changed``."""
        job.status, job.error, job.finished = status, error, time.time()
        job.pictures = []
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

