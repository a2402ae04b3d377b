"""Loop kernels for softmax, normalization, losses and reductions (compiled by numba
through :mod:`ember.backends.jit`)."""
