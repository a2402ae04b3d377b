"""``model.summary()``: a table of layers, output shapes and parameter counts."""

from __future__ import annotations

__all__ = ["summary", "summary_rows"]


from .layers.base import weight_counts


def summary_rows(model):
    """``(rows, trainable, non_trainable)``; rows are (name (type), output shape, params)."""
    if not model.built:
        raise ValueError(
            f"This model ({model.name}) has not yet been built. Build it by "
            "calling it on data, with model.build(input_shape), or give the "
            "first layer an input_shape."
        )
    rows = []
    for lyr in model.layers:
        shape = getattr(lyr, "_output_shape", None)
        if shape is None and hasattr(lyr, "output"):
            shape = lyr.output.shape
        name = getattr(lyr, "name", type(lyr).__name__.lower())
        rows.append(
            (
                f"{name} ({type(lyr).__name__})",
                str(shape if shape is not None else "?"),
                sum(weight_counts(lyr)),
            )
        )
    tr, ntr = weight_counts(model)
    return rows, tr, ntr


def summary(model, line_length: int = 80, print_fn=None) -> None:
    print_fn = print_fn or print
    rows, tr, ntr = summary_rows(model)
    w = [
        max(30, line_length * 45 // 100, *(len(r[0]) + 2 for r in rows)),
        max(20, line_length * 33 // 100, *(len(r[1]) + 2 for r in rows)),
    ]
    w.append(max(12, line_length - w[0] - w[1]))
    line_length = sum(w)

    def line(cols):
        return "".join(str(c)[: n - 1].ljust(n) for c, n in zip(cols, w))

    print_fn(f'Model: "{model.name}"')
    print_fn("━" * line_length)
    print_fn(line(["Layer (type)", "Output Shape", "Param #"]))
    print_fn("━" * line_length)
    for r in rows:
        print_fn(line([r[0], r[1], f"{r[2]:,}"]))
    print_fn("━" * line_length)
    print_fn(f" Total params: {tr + ntr:,}")
    print_fn(f" Trainable params: {tr:,}")
    print_fn(f" Non-trainable params: {ntr:,}")
