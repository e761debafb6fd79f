"""nst_rt.system.threads.blas_threads: numpy's BLAS held to a number of threads while a block runs, then let go."""

from __future__ import annotations

import numpy as np
import pytest
import threadpoolctl

from nst_rt.system.threads import blas_threads, with_blas_threads


def blas_thread_counts() -> list[int]:
    return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]


@pytest.fixture
def two_blas_threads():
    np.ones((2, 2)) @ np.ones((2, 2))  # numpy's BLAS is loaded
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        if set(blas_thread_counts()) != {2}:
            pytest.skip("numpy's BLAS does not run on 2 threads here")
        yield


def test_the_block_runs_on_the_threads_asked_and_the_count_comes_back_after(two_blas_threads):
    with blas_threads(1):
        assert set(blas_thread_counts()) == {1}
    assert set(blas_thread_counts()) == {2}


def test_no_threads_asked_leaves_blas_as_it_is(two_blas_threads):
    with blas_threads(None):
        assert set(blas_thread_counts()) == {2}


def test_a_decorated_method_runs_on_its_objects_threads(two_blas_threads):
    class Worker:
        threads = 1

        @with_blas_threads(lambda worker: worker.threads)
        def counts(self):
            return blas_thread_counts()

    assert set(Worker().counts()) == {1}
    assert set(blas_thread_counts()) == {2}
