"""Convolution and pooling layers, channels-last by default (``data_format='channels_first'``
too), on ``nn.Conv1d/Conv2d`` and the ``nn`` pooling modules (which are NCHW)."""

from __future__ import annotations

import ember
from ember import nn

from .. import activations
from .base import Layer, WeightSpec, register, with_defaults

__all__ = [
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
]


def _tuple(v, n, what):
    if isinstance(v, int):
        out = (v,) * n
    else:
        out = tuple(int(x) for x in v)
        if len(out) != n:
            raise ValueError(f"{what} must be an int or a tuple of {n} ints, got {out}")
    if any(x < 1 for x in out):
        raise ValueError(f"{what} must be positive, got {v!r}")
    return out


def _check_format(data_format):
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}"
        )
    return data_format


def _check_padding(padding):
    padding = padding.lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding


def _same_pads(size, k, s, d):
    """TensorFlow's 'same': output ceil(size/s); the extra pixel goes on the right."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _transpose_crops(k, s, d, output_padding, padding):
    """Keras 3's (left, right) crop of a transposed conv's full output ``(in-1)*s + K`` on one
    axis (``K = (k-1)*d + 1``); Keras' ``compute_conv_transpose_output_shape`` sizes."""
    k = (k - 1) * d + 1
    if padding == "valid":
        op = max(k, s) - k if output_padding is None else output_padding
        left_pad, right_pad = k - 1, k - 1 + op
    else:
        pad_len = s + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
        left_pad = min(pad_len // 2 + pad_len % 2, k - 1)
        right_pad = pad_len - left_pad
    return k - 1 - left_pad, k - 1 - right_pad


def _to_first(x, n):  # channels-last (N, *spatial, C) -> (N, C, *spatial)
    return x.permute(0, n + 1, *range(1, n + 1))


def _to_last(x, n):
    return x.permute(0, *range(2, n + 2), 1)


def _init_and_penalize(layer, to_k, back):
    """Initialize ``layer.conv``'s kernel and bias and attach the regularizers and
    constraints, which see the kernel permuted by ``to_k`` (Keras' layout; ``back`` undoes
    it)."""
    conv = layer.conv
    layer.kernel_initializer(conv.weight)
    if layer.use_bias:
        layer.bias_initializer(conv.bias)
    layer._regularize(layer.kernel_regularizer, lambda: conv.weight.permute(*to_k))
    layer._constrain(
        layer.kernel_constraint,
        conv.weight,
        lambda w: w.permute(*to_k),
        lambda w: w.permute(*back),
    )
    if layer.use_bias:
        layer._regularize(layer.bias_regularizer, lambda: conv.bias)
        layer._constrain(layer.bias_constraint, conv.bias)


class _Conv(Layer):
    rank = 2

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        groups: int = 1,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        n = self.rank
        self.filters = int(filters)
        if self.filters < 1:
            raise ValueError(
                f"{type(self).__name__}: filters must be a positive int, got {filters!r}"
            )
        self.kernel_size = _tuple(kernel_size, n, "kernel_size")
        self.strides = _tuple(strides, n, "strides")
        self.dilation_rate = _tuple(dilation_rate, n, "dilation_rate")
        self.padding, self.data_format = _check_padding(padding), _check_format(data_format)
        self.groups, self.use_bias = int(groups), bool(use_bias)
        self.activation = activations.get(activation)
        self._store_weight_args(locals())

    def build(self, input_shape):
        n = self.rank
        if len(input_shape) != n + 2:
            layout = (
                "spatial..., channels"
                if self.data_format == "channels_last"
                else "channels, spatial..."
            )
            raise ValueError(
                f"{type(self).__name__}: expected inputs of rank {n + 2} (batch, {layout}), "
                f"got shape {tuple(input_shape)}"
            )
        cin = input_shape[-1] if self.data_format == "channels_last" else input_shape[1]
        # NOTE: with stride 1 and odd kernels, 'same' is symmetric: let the conv pad; else
        # pad explicitly (TensorFlow puts the odd pixel at the end).
        self._static_pad = self.padding == "same" and all(
            s == 1 and ((k - 1) * d) % 2 == 0
            for k, s, d in zip(self.kernel_size, self.strides, self.dilation_rate)
        )
        pad = (
            tuple((k - 1) * d // 2 for k, d in zip(self.kernel_size, self.dilation_rate))
            if self._static_pad
            else 0
        )
        cls = nn.Conv1d if n == 1 else nn.Conv2d
        self.conv = cls(
            int(cin),
            self.filters,
            self.kernel_size,
            stride=self.strides,
            padding=pad,
            dilation=self.dilation_rate,
            groups=self.groups,
            bias=self.use_bias,
        )
        # the penalty sees the kernel in Keras' layout (*kernel, in, out)
        to_k = tuple(range(2, n + 2)) + (1, 0)
        _init_and_penalize(self, to_k, tuple(sorted(range(n + 2), key=lambda i: to_k[i])))

    def call(self, inputs):
        n = self.rank
        x = _to_first(inputs, n) if self.data_format == "channels_last" else inputs
        if self.padding == "same" and not self._static_pad:
            pads = []
            for i in reversed(range(n)):
                pads += _same_pads(
                    x.shape[2 + i], self.kernel_size[i], self.strides[i], self.dilation_rate[i]
                )
            from ember.nn import functional as F

            x = F.pad(x, tuple(pads))
        y = self.activation(self.conv(x))
        return _to_last(y, n) if self.data_format == "channels_last" else y

    def _weight_specs(self):
        # Keras kernel: (*kernel, in, out); torch weight: (out, in, *kernel)
        n = self.rank
        to_k = tuple(range(2, n + 2)) + (1, 0)
        back = tuple(sorted(range(n + 2), key=lambda i: to_k[i]))
        s = [WeightSpec(self.conv.weight, lambda a: a.transpose(to_k), lambda a: a.transpose(back))]
        if self.use_bias:
            s.append(WeightSpec(self.conv.bias))
        return s


@register
class Conv1D(_Conv):
    """1-D convolution over (batch, steps, channels)."""

    rank = 1


@register
@with_defaults(strides=(1, 1), dilation_rate=(1, 1))
class Conv2D(_Conv):
    """2-D convolution over (batch, rows, cols, channels) (``channels_last``)."""

    rank = 2


class _ConvTranspose(Layer):
    rank = 2

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding="valid",
        output_padding=None,
        data_format=None,
        dilation_rate=1,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        n, who = self.rank, type(self).__name__
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = int(filters)
        if self.filters < 1:
            raise ValueError(f"{who}: filters must be a positive int, got {filters!r}")
        self.kernel_size, self.strides = (
            _tuple(kernel_size, n, "kernel_size"),
            _tuple(strides, n, "strides"),
        )
        self.dilation_rate = _tuple(dilation_rate, n, "dilation_rate")
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = (
                (int(output_padding),) * n
                if isinstance(output_padding, int)
                else tuple(int(p) for p in output_padding)
            )
            if len(self.output_padding) != n or min(self.output_padding) < 0:
                raise ValueError(
                    f"output_padding must be an int or a tuple of {n} non-negative ints, "
                    f"got {output_padding!r}"
                )
            for i, (op, s) in enumerate(zip(self.output_padding, self.strides)):
                if op >= s:
                    raise ValueError(
                        "`output_padding` must be strictly less than `strides` for all "
                        f"dimensions. At dimension {i}, `output_padding` is {op} but "
                        f"`strides` is {s}. Received: output_padding={self.output_padding}, "
                        f"strides={self.strides}"
                    )
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        self.padding, self.data_format = _check_padding(padding), _check_format(data_format)
        self.use_bias = bool(use_bias)
        self.activation = activations.get(activation)
        self._store_weight_args(locals())

    def _perms(self):
        # Keras layout of a transposed kernel: (*kernel, out, in); torch weight: (in, out, *kernel)
        n = self.rank
        to_k = tuple(range(2, n + 2)) + (1, 0)
        back = tuple(sorted(range(n + 2), key=lambda i: to_k[i]))
        return to_k, back

    def build(self, input_shape):
        n = self.rank
        if len(input_shape) != n + 2:
            raise ValueError(
                f"{type(self).__name__}: expected inputs of rank {n + 2}, "
                f"got shape {tuple(input_shape)}"
            )
        cin = input_shape[-1] if self.data_format == "channels_last" else input_shape[1]
        # Keras 3: the full transposed conv ((in-1)*s + K, K the dilated kernel), cropped by
        # (left, right) per axis; a negative right crop (extra outputs) is torch's
        # output_padding, so the bias reaches those outputs too.
        op = self.output_padding or (None,) * n
        self._crops = tuple(
            _transpose_crops(*a, self.padding)
            for a in zip(self.kernel_size, self.strides, self.dilation_rate, op)
        )
        cls = nn.ConvTranspose1d if n == 1 else nn.ConvTranspose2d
        self.conv = cls(
            int(cin),
            self.filters,
            self.kernel_size,
            stride=self.strides,
            output_padding=tuple(max(-r, 0) for _, r in self._crops),
            dilation=self.dilation_rate,
            bias=self.use_bias,
        )
        _init_and_penalize(self, *self._perms())

    def call(self, inputs):
        n = self.rank
        x = _to_first(inputs, n) if self.data_format == "channels_last" else inputs
        y = self.conv(x)
        if any(c for crop in self._crops for c in crop):
            index = tuple(slice(left, -right if right > 0 else None) for left, right in self._crops)
            y = y[(slice(None), slice(None)) + index]
        y = self.activation(y)
        return _to_last(y, n) if self.data_format == "channels_last" else y

    def _weight_specs(self):
        to_k, back = self._perms()
        s = [WeightSpec(self.conv.weight, lambda a: a.transpose(to_k), lambda a: a.transpose(back))]
        if self.use_bias:
            s.append(WeightSpec(self.conv.bias))
        return s


@register
class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution (``nn.ConvTranspose1d``) over (batch, steps, channels);
    ``'same'`` gives ``steps * strides`` outputs, ``'valid'`` gives
    ``(steps - 1) * strides + max(kernel_size, strides)``. The kernel is Keras'
    ``(kernel_size, filters, in_channels)``.

    Example:
        >>> import ember
        >>> from ember.keras import layers
        >>> layer = layers.Conv1DTranspose(4, 3, strides=2, padding="same")
        >>> tuple(layer(ember.ones(2, 5, 3)).shape), layer.get_weights()[0].shape
        ((2, 10, 4), (3, 4, 3))
    """

    rank = 1


@register
@with_defaults(strides=(1, 1), dilation_rate=(1, 1))
class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution (``nn.ConvTranspose2d``); ``'same'`` gives
    ``input * strides`` outputs, ``'valid'`` gives ``(input - 1) * strides + kernel``."""

    rank = 2


class _Pool(Layer):
    rank = 2
    kind = "max"

    def __init__(
        self, pool_size, strides=None, padding="valid", data_format=None, name=None, **kwargs
    ):
        super().__init__(name=name, **kwargs)
        n = self.rank
        self.pool_size = _tuple(pool_size, n, "pool_size")
        self.strides = _tuple(strides, n, "strides") if strides is not None else self.pool_size
        self.padding, self.data_format = _check_padding(padding), _check_format(data_format)

    def build(self, input_shape):
        n = self.rank
        names = {
            ("max", 1): nn.MaxPool1d,
            ("max", 2): nn.MaxPool2d,
            ("avg", 1): nn.AvgPool1d,
            ("avg", 2): nn.AvgPool2d,
            ("max", 3): nn.MaxPool3d,
            ("avg", 3): nn.AvgPool3d,
        }
        kw = {"count_include_pad": False} if self.kind == "avg" else {}
        self.pool = names[(self.kind, n)](
            self.pool_size if n > 1 else self.pool_size[0],
            stride=self.strides if n > 1 else self.strides[0],
            **kw,
        )

    def call(self, inputs):
        n = self.rank
        x = _to_first(inputs, n) if self.data_format == "channels_last" else inputs
        y = self._pool_same(x) if self.padding == "same" else self.pool(x)
        return _to_last(y, n) if self.data_format == "channels_last" else y

    def _pool_same(self, x):
        # TensorFlow's 'same' (Keras' on every backend): output ceil(size/stride), padding
        # split with the odd pixel on the right; a pad never wins a max or counts in a mean
        import ember.nn.functional as F

        n, k, s = self.rank, self.pool_size, self.strides
        pads = [_same_pads(int(x.shape[2 + i]), k[i], s[i], 1) for i in range(n)]
        lo = tuple(p[0] for p in pads)
        extra = [p for lo_hi in reversed(pads) for p in (0, lo_hi[1] - lo_hi[0])]
        fn = getattr(F, f"{self.kind}_pool{n}d")
        kw = {"count_include_pad": False} if self.kind == "avg" else {}
        pad = lo if n > 1 else lo[0]

        def pool(t):
            return fn(t, self.pool_size if n > 1 else k[0], self.strides if n > 1 else s[0],
                      pad, **kw)  # fmt: skip

        if not any(extra):
            return pool(x)
        if self.kind == "max":
            return pool(F.pad(x, extra, value=float("-inf")))
        # the extra right-hand pixel must not count: divide by the pooled mask of real pixels
        ones = ember.ones((1, 1, *x.shape[2:]), dtype=x.dtype)
        return pool(F.pad(x, extra)) / pool(F.pad(ones, extra))


@register
@with_defaults(pool_size=2)
class MaxPooling1D(_Pool):
    rank, kind = 1, "max"


@register
@with_defaults(pool_size=(2, 2))
class MaxPooling2D(_Pool):
    rank, kind = 2, "max"


@register
class AveragePooling1D(_Pool):
    rank, kind = 1, "avg"


@register
class AveragePooling2D(_Pool):
    rank, kind = 2, "avg"


@register
@with_defaults(pool_size=(2, 2, 2))
class MaxPooling3D(_Pool):
    """Max pooling over (batch, depth, rows, cols, channels) (``channels_last``).

    Example:
        >>> import ember
        >>> from ember.keras import layers
        >>> tuple(layers.MaxPooling3D()(ember.ones(1, 4, 5, 6, 3)).shape)
        (1, 2, 2, 3, 3)
    """

    rank, kind = 3, "max"


@register
class AveragePooling3D(_Pool):
    """Average pooling over (batch, depth, rows, cols, channels); with ``'same'`` a window
    averages only the cells inside the input.

    Example:
        >>> import ember
        >>> from ember.keras import layers
        >>> layer = layers.AveragePooling3D(2, padding="same")
        >>> tuple(layer(ember.ones(1, 3, 4, 5, 2)).shape)
        (1, 2, 2, 3, 2)
    """

    rank, kind = 3, "avg"


class _GlobalPool(Layer):
    rank = 2
    kind = "avg"

    def __init__(self, data_format=None, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.data_format, self.keepdims = _check_format(data_format), keepdims

    def call(self, inputs):
        n = self.rank
        dims = (
            tuple(range(1, n + 1))
            if self.data_format == "channels_last"
            else tuple(range(2, n + 2))
        )
        if self.kind == "avg":
            return inputs.mean(dim=dims, keepdim=self.keepdims)
        return ember.amax(inputs, dim=dims, keepdim=self.keepdims)


@register
class GlobalAveragePooling1D(_GlobalPool):
    """The mean over the time axis; with a mask (batch, steps), the mean of the steps kept.

    Example:
        >>> import ember
        >>> from ember import keras
        >>> x = ember.tensor([[[1.0], [3.0], [8.0]]])
        >>> keras.layers.GlobalAveragePooling1D()(x, mask=ember.tensor([[True, True, False]]))
        tensor([[2.]])
    """

    rank, kind = 1, "avg"
    supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return super().call(inputs)
        axis = 1 if self.data_format == "channels_last" else 2
        m = ember.as_tensor(mask).to(ember.bool).unsqueeze(2 if axis == 1 else 1)
        x = ember.where(m, inputs, ember.zeros_like(inputs))
        count = m.to(inputs.dtype).sum(dim=axis, keepdim=self.keepdims)
        return x.sum(dim=axis, keepdim=self.keepdims) / count

    def compute_mask(self, inputs, mask=None):
        return None


@register
class GlobalAveragePooling2D(_GlobalPool):
    rank, kind = 2, "avg"


@register
class GlobalMaxPooling1D(_GlobalPool):
    rank, kind = 1, "max"


@register
class GlobalMaxPooling2D(_GlobalPool):
    rank, kind = 2, "max"


@register
class GlobalAveragePooling3D(_GlobalPool):
    """The mean over the three spatial dims of (batch, depth, rows, cols, channels).

    Example:
        >>> import ember
        >>> from ember.keras import layers
        >>> tuple(layers.GlobalAveragePooling3D(keepdims=True)(ember.ones(2, 3, 4, 5, 6)).shape)
        (2, 1, 1, 1, 6)
    """

    rank, kind = 3, "avg"


@register
class GlobalMaxPooling3D(_GlobalPool):
    """The max over the three spatial dims of (batch, depth, rows, cols, channels).

    Example:
        >>> import ember
        >>> from ember.keras import layers
        >>> tuple(layers.GlobalMaxPooling3D()(ember.ones(2, 3, 4, 5, 6)).shape)
        (2, 6)
    """

    rank, kind = 3, "max"
