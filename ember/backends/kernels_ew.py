"""Loop kernels for elementwise and transcendental ops (compiled by numba through
:mod:`ember.backends.jit`)."""
