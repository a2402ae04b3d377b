"""Grad mode, inference mode, anomaly detection and the tracer are per thread (as in
PyTorch): a worker thread's ``no_grad`` must never switch gradients off elsewhere."""

import threading

import numpy as np

import ember


def _in_thread(fn):
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001  (re-raised in the test's thread)
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_new_thread_starts_with_grad_enabled_even_inside_no_grad():
    with ember.no_grad():
        assert not ember.is_grad_enabled()
        assert _in_thread(ember.is_grad_enabled) is True
    assert ember.is_grad_enabled()


def test_no_grad_in_a_thread_leaves_the_caller_alone():
    def worker():
        with ember.no_grad():
            return ember.is_grad_enabled()

    assert _in_thread(worker) is False
    assert ember.is_grad_enabled()
    x = ember.ones(3, requires_grad=True)
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_interleaved_no_grad_blocks_cannot_leave_grad_off():
    # With one process-wide switch this order (A enters, B enters, A exits, B exits) left
    # gradients off for everyone: B saved A's "off" and restored it last.
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with ember.no_grad():
            a_in.set()
            b_in.wait(5)
        a_out.set()
        seen["a"] = ember.is_grad_enabled()

    def b():
        a_in.wait(5)
        with ember.no_grad():
            b_in.set()
            a_out.wait(5)
        seen["b"] = ember.is_grad_enabled()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": True, "b": True}
    assert ember.is_grad_enabled()


def test_inference_mode_and_set_grad_enabled_are_per_thread():
    with ember.inference_mode():
        assert ember.is_inference_mode_enabled()
        assert _in_thread(ember.is_inference_mode_enabled) is False
    ember.set_grad_enabled(False)
    try:
        assert _in_thread(ember.is_grad_enabled) is True
    finally:
        ember.set_grad_enabled(True)
    assert ember.is_grad_enabled()


def test_gradient_recorded_in_worker_threads_while_main_has_no_grad():
    def worker():
        x = ember.tensor([1.0, 2.0], requires_grad=True)
        (x * x).sum().backward()
        return x.grad.tolist()

    with ember.no_grad():
        assert _in_thread(worker) == [2.0, 4.0]


def test_leaf_hooks_flag_is_shared_by_all_threads():
    # A hook registered in one thread must fire in a backward pass run by another.
    x = ember.ones(2, requires_grad=True)
    calls = []
    x.register_hook(lambda g: calls.append(g.tolist()))

    def worker():
        (x * 3.0).sum().backward()

    _in_thread(worker)
    assert calls == [[3.0, 3.0]]


def test_a_trace_does_not_capture_another_threads_ops():
    started, release = threading.Event(), threading.Event()
    result = {}

    def other():
        started.wait(5)
        y = ember.ones(2) + 1.0  # runs eagerly while the main thread traces
        result["y"] = y.tolist()
        release.set()

    t = threading.Thread(target=other)
    t.start()

    @ember.compile
    def f(x):
        started.set()
        release.wait(5)
        return x * 2.0

    out = f(ember.ones(2))
    t.join()
    assert result["y"] == [2.0, 2.0]
    assert out.tolist() == [2.0, 2.0]
