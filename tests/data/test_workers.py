"""Worker processes: errors, crashes, timeouts, shutdown, seeding and persistence."""

import gc
import multiprocessing as mp
import os
import random
import signal
import time

import numpy as np
import pytest
from _helpers import child_pids, deadline, pid_alive

import ember
from ember.data import DataLoader, get_worker_info
from ember.data import transforms as T


class Boom(Exception):
    pass


class Items:
    """Item i is (i, pid); misbehaves on chosen indices."""

    def __init__(self, n=32, fail_at=None, kill_at=None, sleep=0.0, exc=Boom):
        self.n, self.fail_at, self.kill_at, self.sleep, self.exc = n, fail_at, kill_at, sleep, exc

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise self.exc(f"bad item {i}")
        if i == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.sleep:
            time.sleep(self.sleep)
        return np.array([i, os.getpid()])


def _no_children():
    gc.collect()
    t0 = time.monotonic()
    while (mp.active_children() or child_pids()) and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    return not mp.active_children() and not child_pids()


def test_worker_exception_reraised_with_traceback():
    with deadline(30):
        loader = DataLoader(Items(fail_at=13), batch_size=4, num_workers=2)
        with pytest.raises(Boom) as info:
            list(loader)
    msg = str(info.value)
    assert "bad item 13" in msg
    assert "in DataLoader worker process" in msg
    assert "Traceback (most recent call last)" in msg and "__getitem__" in msg
    assert _no_children()


def test_key_error_and_odd_exception_types():
    class NeedsTwo(Exception):
        def __init__(self, a, b):
            super().__init__(a, b)

    def raise_two(i):
        raise NeedsTwo(1, 2)

    with deadline(30):
        with pytest.raises(KeyError, match="bad item 1"):
            list(DataLoader(Items(fail_at=1, exc=KeyError), batch_size=2, num_workers=2))

        class Odd(Items):
            def __getitem__(self, i):
                raise NeedsTwo(1, 2)

        # an exception that cannot be rebuilt from a message becomes a RuntimeError
        with pytest.raises(RuntimeError, match="NeedsTwo"):
            list(DataLoader(Odd(), batch_size=2, num_workers=1))
    assert _no_children()


class Segfaults(Items):
    def __getitem__(self, i):
        if i == 9:
            import ctypes
            import faulthandler

            faulthandler.disable()  # keep the test log clean (pytest enables it)
            ctypes.string_at(0)  # NULL dereference: a real segmentation fault
        return super().__getitem__(i)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSEGV"])
def test_killed_worker_raises_clear_error_quickly(how):
    ds = Items(n=64, kill_at=9) if how == "SIGKILL" else Segfaults(n=64)
    with deadline(30):
        t0 = time.monotonic()
        loader = DataLoader(ds, batch_size=4, num_workers=2)
        with pytest.raises(RuntimeError) as info:
            for _ in loader:
                pass
        assert time.monotonic() - t0 < 10
    msg = str(info.value)
    assert "DataLoader worker 0" in msg and "exited unexpectedly" in msg  # task 2 -> worker 0
    code = -signal.Signals[how].value
    assert f"exit code {code}" in msg and how in msg
    assert _no_children()


def test_prefetch_bounds_work_in_flight():
    with deadline(30):
        loader = DataLoader(Items(n=60), batch_size=2, num_workers=2, prefetch_factor=3)
        it = iter(loader)
        seen = 0
        for _ in it:
            assert 0 < it._send_idx - it._rcvd_idx <= 6 or it._send_idx == 30
            seen += 1
        assert seen == 30
    assert _no_children()


def test_timeout():
    with deadline(30):
        loader = DataLoader(Items(n=4, sleep=1.0), batch_size=2, num_workers=1, timeout=0.3)
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match="timed out after 0.3"):
            next(iter(loader))
        assert time.monotonic() - t0 < 1.5  # raised at the timeout, not when the batch is done
    assert _no_children()


def test_abandoned_iterator_leaves_no_processes():
    with deadline(30):
        loader = DataLoader(Items(n=200), batch_size=2, num_workers=3)
        it = iter(loader)
        first = next(it)
        pids = [p.pid for p in it._workers]
        assert len(pids) == 3 and all(pid_alive(p) for p in pids)
        assert int(first.numpy()[0, 1]) in pids  # produced by a worker process
        del it
        assert _no_children()
        assert not any(pid_alive(p) for p in pids)


def test_workers_exit_when_parent_dies(tmp_path):
    # a middle process creates a loader, reports its workers' pids and is SIGKILLed; the
    # orphaned workers must notice and exit on their own
    pid_file = tmp_path / "pids"

    def middle():
        it = iter(DataLoader(Items(n=1000, sleep=0.01), batch_size=1, num_workers=2))
        next(it)
        pid_file.write_text(" ".join(str(p.pid) for p in it._workers))
        time.sleep(60)

    ctx = mp.get_context("fork")
    p = ctx.Process(target=middle)
    with deadline(40):
        p.start()
        while not pid_file.exists() or not pid_file.read_text():
            time.sleep(0.05)
        pids = [int(x) for x in pid_file.read_text().split()]
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        t0 = time.monotonic()
        while any(pid_alive(q) and _is_running(q) for q in pids) and time.monotonic() - t0 < 15:
            time.sleep(0.1)
    assert not any(pid_alive(q) and _is_running(q) for q in pids)


def _is_running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class RandomItems:
    """Draws from every random source a worker must seed."""

    def __len__(self):
        return 24

    def __getitem__(self, i):
        info = get_worker_info()
        flip = T.RandomHorizontalFlip(0.5)(np.arange(4, dtype=np.float32).reshape(1, 4, 1))
        return np.array(
            [
                random.random(),
                np.random.rand(),
                float(flip[0, 0, 0]),
                T.RandomCrop(8, padding=4)(np.zeros((8, 8, 1))).sum(),
                info.id if info else -1,
            ]
        )


def test_seeding_reproducible_and_differs_between_workers():
    def epoch():
        return np.concatenate(
            [b.numpy() for b in DataLoader(RandomItems(), batch_size=3, num_workers=2)]
        )

    with deadline(60):
        ember.manual_seed(1234)
        a = epoch()
        b = epoch()  # a new iterator draws a new base seed
        ember.manual_seed(1234)
        c = epoch()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a[:, :2], b[:, :2])
    w0, w1 = a[a[:, 4] == 0], a[a[:, 4] == 1]
    assert len(w0) == len(w1) == 12
    # different workers draw different numbers (python random, numpy, augmentation)
    assert not np.array_equal(w0[:, :2], w1[:, :2])
    assert len(np.unique(a[:, 0])) == 24


def test_worker_init_fn_and_worker_info(tmp_path):
    def init(worker_id):
        info = get_worker_info()
        assert info.id == worker_id and info.num_workers == 3
        (tmp_path / f"w{worker_id}").write_text(str(info.seed))

    class WhoAmI:
        def __len__(self):
            return 9

        def __getitem__(self, i):
            return get_worker_info().id

    assert get_worker_info() is None
    ember.manual_seed(0)
    ids = [
        int(x)
        for b in DataLoader(WhoAmI(), batch_size=1, num_workers=3, worker_init_fn=init)
        for x in b.numpy()
    ]
    assert ids == [0, 1, 2] * 3  # round robin, in order
    seeds = [int((tmp_path / f"w{i}").read_text()) for i in range(3)]
    assert seeds[1] == seeds[0] + 1 and seeds[2] == seeds[0] + 2


def test_worker_init_fn_error_is_reported():
    def init(worker_id):
        raise Boom(f"init failed in {worker_id}")

    with deadline(30), pytest.raises(Boom, match="init failed"):
        list(DataLoader(Items(), batch_size=2, num_workers=2, worker_init_fn=init))
    assert _no_children()


def test_persistent_workers_reuse_processes():
    with deadline(30):
        loader = DataLoader(Items(n=10), batch_size=3, num_workers=2, persistent_workers=True)
        e1 = np.concatenate([b.numpy() for b in loader])
        it = loader._iterator
        # abandon the second epoch half way, then run a full third one
        it2 = iter(loader)
        next(it2)
        e3 = np.concatenate([b.numpy() for b in loader])
        assert loader._iterator is it
        np.testing.assert_array_equal(e1[:, 0], np.arange(10))
        np.testing.assert_array_equal(e3[:, 0], np.arange(10))
        assert set(e1[:, 1]) == set(e3[:, 1])  # same worker pids
        it._shutdown()
    assert _no_children()


def test_persistent_workers_iterable_and_recovery_after_error():
    from ember.data import IterableDataset

    class Stream(IterableDataset):
        def __iter__(self):
            info = get_worker_info()
            return iter(range(info.id, 10, info.num_workers))

    with deadline(30):
        loader = DataLoader(Stream(), batch_size=3, num_workers=2, persistent_workers=True)
        for _ in range(2):
            got = sorted(v for b in loader for v in b.numpy().tolist())
            assert got == list(range(10))
        loader._iterator._shutdown()
        flaky = DataLoader(
            Items(n=8, fail_at=5), batch_size=2, num_workers=2, persistent_workers=True
        )
        with pytest.raises(Boom):
            list(flaky)
        first = next(iter(flaky))  # fresh workers after the failure
        assert first.numpy()[:, 0].tolist() == [0, 1]
        flaky._iterator._shutdown()
    assert _no_children()


def test_spawn_context():
    with deadline(60):
        out = [
            b.numpy()
            for b in DataLoader(
                Items(n=6), batch_size=2, num_workers=2, multiprocessing_context="spawn"
            )
        ]
    assert np.concatenate(out)[:, 0].tolist() == list(range(6))
    assert _no_children()
