"""A run resumes under another memory plan: the L-BFGS history it used is stored in the checkpoint and reused,
whatever the free memory or --tile of the resuming process would plan; when even that history cannot fit the
resume is refused in one line with the estimate; the checkpoint file is closed once the optimiser has read it."""

from __future__ import annotations

import numpy as np
import pytest

from nst_rt.pipeline import memory
from nst_rt.pipeline.checkpoint import Checkpoint
from nst_rt.errors import MemoryLimitError
from nst_rt.pipeline.stylizer import Stylizer

GIB = 1 << 30
SHALLOW = dict(content_layers=["relu2_2"], style_layers=["relu1_1", "relu2_1"])


def every_iteration(path, **kwargs) -> Checkpoint:
    return Checkpoint(path, 1e-9, write_share=None, **kwargs)


def stop_at(iteration: int):
    def progress(p):
        if p.iteration == iteration:
            raise KeyboardInterrupt

    return progress


@pytest.fixture
def setting(models, monkeypatch):
    """A 192x48 run in tiles of 64 px, and the free memory that leaves room for 5 of its 8 pairs."""
    stylizer = Stylizer(models_dir=models, size=192, scales=1, iterations=8, history=20, threads=1, **SHALLOW)
    monkeypatch.setattr(memory, "TILE_SIZES", (64,))
    monkeypatch.setattr(memory, "SHRINK_TILE", 64)
    five = memory.tiled_estimate_bytes(stylizer.network, 48, 192, 5, 64, 16, ["relu2_2"])
    content = np.random.default_rng(0).random((48, 192, 3), dtype=np.float32)
    return stylizer, five, content, lambda have: monkeypatch.setattr(memory, "available_bytes", lambda: have)


def pairs_used(monkeypatch):
    import nst_rt.optimize

    used, real = [], nst_rt.optimize.minimize
    monkeypatch.setattr(nst_rt.optimize, "minimize",
                        lambda fun, x0, **kw: used.append(kw["options"]["maxcor"]) or real(fun, x0, **kw))
    return used


@pytest.mark.filterwarnings("ignore::nst_rt.errors.MemoryNotice")
def test_a_run_shrunk_at_its_start_resumes_with_its_history_where_more_memory_is_free(setting, tmp_path,
                                                                                      monkeypatch):
    stylizer, five, content, free = setting
    free(five)
    whole = stylizer.run(content, content[::-1])
    path = tmp_path / "out.png.ckpt"
    assert stylizer.run(content, content[::-1], stop_at(4), checkpoint=every_iteration(path)).interrupted
    used = pairs_used(monkeypatch)
    free(64 * GIB)  # a fresh run would now get all 8 pairs, and no tiles
    resumed = stylizer.derive(tile=64).run(content, content[::-1], checkpoint=every_iteration(path, resume=True))
    assert used == [5]
    np.testing.assert_array_equal(resumed.image, whole.image)
    assert (resumed.loss, resumed.iterations) == (whole.loss, whole.iterations)


def test_resume_with_another_tile_continues(setting, tmp_path, monkeypatch):
    stylizer, _, content, free = setting
    free(64 * GIB)
    path = tmp_path / "out.png.ckpt"
    assert stylizer.run(content, content[::-1], stop_at(3), checkpoint=every_iteration(path)).interrupted
    used, seen = pairs_used(monkeypatch), []
    resumed = stylizer.derive(tile=64).run(content, content[::-1], lambda p: seen.append(p.iteration),
                                           checkpoint=every_iteration(path, resume=True))
    assert used == [8] and seen[0] == 4 and resumed.iterations == 8 and np.isfinite(resumed.loss)


def test_a_history_that_cannot_fit_any_more_is_refused_with_the_estimate(setting, tmp_path):
    stylizer, five, content, free = setting
    free(64 * GIB)
    path = tmp_path / "out.png.ckpt"
    assert stylizer.run(content, content[::-1], stop_at(3), checkpoint=every_iteration(path)).interrupted
    free(five)  # a fresh run would shrink the history to 5 pairs; the checkpoint holds 8
    with pytest.raises(MemoryLimitError) as caught:
        stylizer.derive(tile=64).run(content, content[::-1], checkpoint=every_iteration(path, resume=True))
    message = str(caught.value)
    assert "\n" not in message and "history of 8 pairs" in message and "GiB" in message
    assert path.exists()  # nothing lost


def test_the_checkpoint_file_is_closed_once_read(setting, tmp_path, monkeypatch):
    stylizer, _, content, free = setting
    free(64 * GIB)
    path = tmp_path / "out.png.ckpt"
    assert stylizer.run(content, content[::-1], stop_at(3), checkpoint=every_iteration(path)).interrupted
    opened = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: opened.append(real_load(*a, **k)) or opened[-1])
    stylizer.run(content, content[::-1], checkpoint=every_iteration(path, resume=True))
    assert opened and all(npz.fid is None for npz in opened if hasattr(npz, "fid"))


def test_resume_reads_the_pairs_straight_into_the_ring(tmp_path):
    """The peak of numpy's allocations while resuming is that of a run that filled its history itself, not that
    plus a second copy of the pairs."""
    import tracemalloc

    from nst_rt.pipeline.checkpoint import _Prefixed
    from nst_rt.optimize import minimize

    n, pairs = 1 << 20, 6
    scale = np.linspace(1.0, 3.0, n)

    def fun(x):
        return float(0.5 * np.dot(scale * x, x)), scale * x

    states = []

    def keep(state):
        if state.nit == pairs:
            states.append(state.state())

    x0 = np.ones(n)
    options = {"maxiter": pairs + 1, "maxcor": pairs, "gtol": 0.0, "ftol": 0.0}
    minimize(fun, x0, jac=True, method="lbfgs", options=options, callback=keep)
    assert int(states[0]["count"]) == pairs
    path = tmp_path / "state.npz"
    np.savez(path, **{"opt_" + k: v for k, v in states[0].items()})
    ring = 2 * pairs * n * 4

    def peak_resuming(state):
        tracemalloc.start()
        resumed = minimize(fun, x0, jac=True, method="lbfgs", options=options, resume=state)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert resumed.nit == pairs + 1
        return peak

    in_memory = peak_resuming(states[0])  # the pairs already held: only the ring and the vectors count
    with np.load(path) as saved:
        from_file = peak_resuming(_Prefixed(saved, "opt_"))
    # Reading from the file costs one read chunk beyond the in-memory resume; a second copy of the pairs, a ring.
    from nst_rt.io.npz_stream import _CHUNK
    assert from_file < in_memory + _CHUNK + ring // 8, (from_file / ring, in_memory / ring)
