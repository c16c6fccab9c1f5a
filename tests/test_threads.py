"""physim.threads: BLAS at one thread inside the context, every library restored after it."""

from threadpoolctl import threadpool_info

from physim.threads import single_threaded_blas


def _blas_threads() -> list[int]:
    return [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]


def test_single_threaded_blas_limits_every_blas_and_restores_it_nested():
    before = _blas_threads()
    assert len(before) >= 1  # numpy's BLAS at least (scipy's too where it ships its own)
    with single_threaded_blas():
        assert _blas_threads() == [1] * len(before)
        with single_threaded_blas():
            assert _blas_threads() == [1] * len(before)
        assert _blas_threads() == [1] * len(before)  # the inner exit restores the outer limit
    assert _blas_threads() == before
