"""BatchNormalization and LayerNormalization with Keras defaults, on ``nn.BatchNorm*d`` and
``nn.LayerNorm``.

Keras' ``momentum=0.99`` weights the *old* moving average; PyTorch's ``momentum`` weights the
new batch statistic, so the module underneath gets ``1 - momentum`` (0.01).
"""

from __future__ import annotations

import ember
from ember import nn

from .base import Layer, WeightSpec, check_supported, register

__all__ = ["BatchNormalization", "LayerNormalization"]


@register
class BatchNormalization(Layer):
    """Normalize over all axes but ``axis`` (the channels: last by default). In training,
    a mask (batch, steps) restricts the batch statistics to the steps it keeps, as Keras."""

    supports_masking = True

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        renorm: bool = False,
        renorm_clipping=None,
        renorm_momentum: float = 0.99,
        synchronized: bool = False,
        **kwargs,
    ):
        check_supported(
            "BatchNormalization",
            renorm=(renorm, False),
            renorm_clipping=(renorm_clipping, None),
            synchronized=(synchronized, False),
        )
        super().__init__(**kwargs)
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self._store_weight_args(locals())
        self.renorm, self.renorm_clipping = renorm, renorm_clipping
        self.renorm_momentum, self.synchronized = float(renorm_momentum), synchronized

    def build(self, input_shape):
        rank = len(input_shape)
        if not -rank <= self.axis < rank:
            raise ValueError(
                f"BatchNormalization: axis={self.axis} is out of range for inputs of rank "
                f"{rank} (shape {tuple(input_shape)})"
            )
        self._axis = self.axis % rank
        if self._axis == 0:
            raise ValueError("BatchNormalization: axis cannot be the batch axis")
        c = int(input_shape[self._axis])
        cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}.get(rank)
        if cls is None:
            raise ValueError(f"BatchNormalization: inputs of rank {rank} are not supported")
        self.bn = cls(
            c, eps=self.epsilon, momentum=1.0 - self.momentum, affine=self.center or self.scale
        )
        if self.center or self.scale:
            self.gamma_initializer(self.bn.weight)
            self.beta_initializer(self.bn.bias)
            if not self.scale:
                self.bn.weight.requires_grad_(False)
            if not self.center:
                self.bn.bias.requires_grad_(False)
            if self.scale:
                self._regularize(self.gamma_regularizer, lambda: self.bn.weight)
                self._constrain(self.gamma_constraint, self.bn.weight)
            if self.center:
                self._regularize(self.beta_regularizer, lambda: self.bn.bias)
                self._constrain(self.beta_constraint, self.bn.bias)
        self.moving_mean_initializer(self.bn.running_mean)
        self.moving_variance_initializer(self.bn.running_var)

    def call(self, inputs, training=None, mask=None):
        if mask is not None:
            mask = ember.as_tensor(mask)
            if mask.ndim != inputs.ndim - 1:
                raise ValueError(
                    "BatchNormalization: the mask provided should be one dimension less than "
                    f"the inputs. Received: mask.shape={tuple(mask.shape)}, "
                    f"inputs.shape={tuple(inputs.shape)}"
                )
            if training and self.trainable:
                return self._masked_train(inputs, mask)
        moved = self._axis != 1
        x = ember.movedim(inputs, self._axis, 1) if moved else inputs
        was = self.bn.training
        # Keras: a BatchNormalization with trainable=False runs in inference mode (its moving
        # statistics stay frozen), even when the model trains
        self.bn.train((bool(training) if training is not None else was) and self.trainable)
        try:
            y = self.bn(x)
        finally:
            self.bn.train(was)
        return ember.movedim(y, 1, self._axis) if moved else y

    def _masked_train(self, inputs, mask):
        """Keras' masked moments in training: the mean and (biased) variance over the
        entries the mask keeps (mask expanded on the last axis), which also update the
        moving statistics."""
        keep = mask.to(ember.bool).unsqueeze(-1).expand(*inputs.shape)
        axes = [d for d in range(inputs.ndim) if d != self._axis]
        w = keep.to(inputs.dtype)
        count = w.sum(dim=axes, keepdim=True) + 1e-7  # Keras' backend.epsilon()
        zero = ember.zeros_like(inputs)
        mean = ember.where(keep, inputs, zero).sum(dim=axes, keepdim=True) / count
        diff = ember.where(keep, inputs - mean, zero)
        var = (diff * diff).sum(dim=axes, keepdim=True) / count
        bn = self.bn
        with ember.no_grad():
            m = self.momentum
            bn.running_mean.copy_(bn.running_mean * m + mean.detach().reshape(-1) * (1.0 - m))
            bn.running_var.copy_(bn.running_var * m + var.detach().reshape(-1) * (1.0 - m))
        shape = [1] * inputs.ndim
        shape[self._axis] = -1
        y = (inputs - mean) * ember.rsqrt(var + self.epsilon)
        if bn.weight is not None:
            y = y * bn.weight.reshape(shape) + bn.bias.reshape(shape)
        return y

    def _hidden_weights(self):
        if not (self.center or self.scale):
            return []
        return [
            p for p, on in ((self.bn.weight, self.scale), (self.bn.bias, self.center)) if not on
        ]

    def _weight_specs(self):
        s = []
        if self.scale:
            s.append(WeightSpec(self.bn.weight))
        if self.center:
            s.append(WeightSpec(self.bn.bias))
        s.append(WeightSpec(self.bn.running_mean, trainable=False))
        s.append(WeightSpec(self.bn.running_var, trainable=False))
        return s


@register
class LayerNormalization(Layer):
    """Normalize over the last axis (``axis=-1``), Keras ``epsilon=1e-3``."""

    supports_masking = True

    def __init__(
        self,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(axis, int):
            raise NotImplementedError(
                f"LayerNormalization: axis={axis!r} is not supported (only a single int axis)"
            )
        self.axis, self.epsilon = int(axis), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self._store_weight_args(locals())

    def build(self, input_shape):
        if not -len(input_shape) <= self.axis < len(input_shape):
            raise ValueError(
                f"LayerNormalization: axis={self.axis} is out of range for inputs of rank "
                f"{len(input_shape)} (shape {tuple(input_shape)})"
            )
        self._axis = self.axis % len(input_shape)
        self.ln = nn.LayerNorm(
            int(input_shape[self._axis]),
            eps=self.epsilon,
            elementwise_affine=self.center or self.scale,
        )
        if self.center or self.scale:
            self.gamma_initializer(self.ln.weight)
            self.beta_initializer(self.ln.bias)
            # a disabled scale (center) stays at its initial value
            self.ln.weight.requires_grad_(self.scale)
            self.ln.bias.requires_grad_(self.center)
            if self.scale:
                self._regularize(self.gamma_regularizer, lambda: self.ln.weight)
                self._constrain(self.gamma_constraint, self.ln.weight)
            if self.center:
                self._regularize(self.beta_regularizer, lambda: self.ln.bias)
                self._constrain(self.beta_constraint, self.ln.bias)

    def call(self, inputs):
        last = len(inputs.shape) - 1
        if self._axis != last:
            return ember.movedim(self.ln(ember.movedim(inputs, self._axis, -1)), -1, self._axis)
        return self.ln(inputs)

    def _weight_specs(self):
        s = []
        if self.scale:
            s.append(WeightSpec(self.ln.weight))
        if self.center:
            s.append(WeightSpec(self.ln.bias))
        return s
