import numpy as np
import pytest

import ember
import ember.data.transforms as T
from ember.data.transforms import functional as F

Image = pytest.importorskip("PIL.Image")
torch = pytest.importorskip("torch")


def img(h=6, w=8, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def test_to_tensor_array_and_pil():
    a = img()
    t = T.ToTensor()(a)
    assert isinstance(t, ember.Tensor) and tuple(t.shape) == (3, 6, 8)
    np.testing.assert_allclose(t.numpy(), a.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    assert t.numpy().dtype == np.float32
    p = T.ToTensor()(Image.fromarray(a))
    np.testing.assert_array_equal(p.numpy(), t.numpy())
    g = T.ToTensor()(a[:, :, 0])
    assert tuple(g.shape) == (1, 6, 8)
    np.testing.assert_array_equal(T.ToTensor()(np.full((2, 2), 2.5)).numpy(), 2.5)


def test_normalize_matches_torch():
    x = np.random.default_rng(1).random((3, 4, 5), dtype=np.float32)
    mean, std = [0.4914, 0.4822, 0.4465], [0.247, 0.243, 0.261]
    ours = T.Normalize(mean, std)(ember.from_numpy(x))
    ref = (torch.from_numpy(x) - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[
        :, None, None
    ]
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="zero"):
        T.Normalize([0.0], [0.0])(ember.from_numpy(x))
    with pytest.raises(TypeError):
        F.normalize(np.zeros((3, 2, 2), np.uint8), [0], [1])


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", [(3, 5), (13, 7), (6, 8)])
def test_resize_array_matches_torch_interpolate(mode, size):
    a = np.random.default_rng(2).random((6, 8, 2), dtype=np.float32)
    ours = F.resize(a, size, interpolation=mode)
    t = torch.from_numpy(a.transpose(2, 0, 1)[None].copy())
    kw = {"align_corners": False} if mode == "bilinear" else {}
    ref = torch.nn.functional.interpolate(t, size=size, mode=mode, **kw)[0].numpy()
    np.testing.assert_allclose(ours, ref.transpose(1, 2, 0), rtol=1e-5, atol=1e-5)


def test_resize_shorter_side_and_pil_and_tensor():
    assert T.Resize(4)(img(8, 16)).shape == (4, 8, 3)
    assert T.Resize(4)(img(16, 8)).shape == (8, 4, 3)
    assert T.Resize((5, 7))(Image.fromarray(img())).size == (7, 5)
    out = T.Resize((3, 4))(T.ToTensor()(img()))
    assert isinstance(out, ember.Tensor) and tuple(out.shape) == (3, 3, 4)
    u8 = T.Resize((12, 16))(img())
    assert u8.dtype == np.uint8


def test_center_crop_and_padding():
    a = np.arange(36).reshape(6, 6)
    np.testing.assert_array_equal(T.CenterCrop(2)(a), a[2:4, 2:4])
    np.testing.assert_array_equal(T.CenterCrop((4, 2))(a), a[1:5, 2:4])
    big = T.CenterCrop(8)(a)
    assert big.shape == (8, 8) and big[0].sum() == 0 and big[1:7, 1:7].tolist() == a.tolist()
    pil = T.CenterCrop(2)(Image.fromarray(img()))
    np.testing.assert_array_equal(np.asarray(pil), img()[2:4, 3:5])
    t = T.CenterCrop(2)(ember.from_numpy(np.arange(2 * 16, dtype=np.float32).reshape(2, 4, 4)))
    assert tuple(t.shape) == (2, 2, 2) and t.numpy()[1, 0, 0] == 16 + 5


def _is_window(out, padded):
    h, w = out.shape[:2]
    return any(
        np.array_equal(padded[i : i + h, j : j + w], out)
        for i in range(padded.shape[0] - h + 1)
        for j in range(padded.shape[1] - w + 1)
    )


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_random_crop_padding_modes(mode):
    a = img(5, 5)
    padded = np.pad(a, ((2, 2), (2, 2), (0, 0)), mode=mode)
    ember.manual_seed(0)
    outs = [T.RandomCrop(5, padding=2, padding_mode=mode)(a) for _ in range(20)]
    assert all(o.shape == (5, 5, 3) and _is_window(o, padded) for o in outs)
    assert len({o.tobytes() for o in outs}) > 3  # positions vary
    fill = T.RandomCrop(9, padding=2, fill=7)(a)
    assert fill[0, 0, 0] == 7 and _is_window(a, fill)
    np.testing.assert_array_equal(F.pad(a, 2, padding_mode=mode), padded)


def test_random_crop_pad_if_needed_and_errors():
    a = img(3, 4)
    out = T.RandomCrop((6, 6), pad_if_needed=True)(a)
    assert out.shape == (6, 6, 3)
    with pytest.raises(ValueError, match="larger"):
        T.RandomCrop(6)(a)
    pil = T.RandomCrop(4, padding=1)(Image.fromarray(img(4, 4)))
    assert pil.size == (4, 4)


def test_flips():
    a = img()
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(a), a[:, ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(a), a)
    np.testing.assert_array_equal(T.RandomVerticalFlip(1.0)(a), a[::-1])
    p = T.RandomHorizontalFlip(1.0)(Image.fromarray(a))
    np.testing.assert_array_equal(np.asarray(p), a[:, ::-1])
    t = T.RandomVerticalFlip(1.0)(T.ToTensor()(a))
    np.testing.assert_allclose(t.numpy(), a[::-1].transpose(2, 0, 1) / 255, rtol=1e-6)
    ember.manual_seed(3)
    flips = [T.RandomHorizontalFlip()(a)[0, 0, 0] == a[0, -1, 0] for _ in range(200)]
    assert 60 < sum(flips) < 140


def test_rotation_matches_rot90_and_pil():
    a = img(6, 6)
    np.testing.assert_array_equal(F.rotate(a, 90), np.rot90(a))
    np.testing.assert_array_equal(np.asarray(F.rotate(Image.fromarray(a), 90)), np.rot90(a))
    wide = img(4, 6)
    np.testing.assert_array_equal(F.rotate(wide, 90, expand=True), np.rot90(wide))
    # arbitrary angle: the NumPy warp agrees with Pillow on (almost) every pixel
    ours = F.rotate(a, 30)
    pil = np.asarray(F.rotate(Image.fromarray(a), 30))
    assert (ours == pil).all(axis=-1).mean() > 0.9
    r = T.RandomRotation((10, 20))(a)
    assert r.shape == a.shape and not np.array_equal(r, a)


def test_affine_translate_scale_and_random_affine():
    a = img(8, 8)
    shifted = F.affine(a, 0, translate=(2, 1))
    np.testing.assert_array_equal(shifted[1:, 2:], a[:-1, :-2])
    assert shifted[0].sum() == 0 and shifted[:, :2].sum() == 0
    np.testing.assert_array_equal(F.affine(a, 0), a)
    pil = np.asarray(F.affine(Image.fromarray(a), 0, translate=(2, 1)))
    np.testing.assert_array_equal(pil, shifted)
    bil = F.affine(a.astype(np.float32), 0, interpolation="bilinear")
    np.testing.assert_allclose(bil, a, atol=1e-4)
    ember.manual_seed(1)
    out = T.RandomAffine(15, translate=(0.2, 0.2), scale=(0.8, 1.2), shear=10)(a)
    assert out.shape == a.shape and not np.array_equal(out, a)
    t = T.RandomAffine(0, translate=(0.25, 0.0))(T.ToTensor()(a))
    assert isinstance(t, ember.Tensor) and tuple(t.shape) == (3, 8, 8)


def test_random_resized_crop():
    a = img(20, 30)
    out = T.RandomResizedCrop(8)(a)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    sq = img(10, 10)
    full = T.RandomResizedCrop(5, scale=(1, 1), ratio=(1, 1))(sq)
    np.testing.assert_array_equal(full, F.resize(sq, (5, 5)))
    assert T.RandomResizedCrop((4, 6))(Image.fromarray(a)).size == (6, 4)


def test_color_jitter_functions():
    a = img(4, 5)
    f = a.astype(np.float32) / 255
    np.testing.assert_allclose(F.adjust_brightness(f, 0.5), f * 0.5, rtol=1e-6)
    pil_b = np.asarray(F.adjust_brightness(Image.fromarray(a), 0.5)).astype(int)
    assert np.abs(F.adjust_brightness(a, 0.5).astype(int) - pil_b).max() <= 1
    pil_s = np.asarray(F.adjust_saturation(Image.fromarray(a), 0.3)).astype(int)
    assert np.abs(F.adjust_saturation(a, 0.3).astype(int) - pil_s).max() <= 2
    np.testing.assert_allclose(F.adjust_hue(f, 0.0), f, atol=1e-5)
    import colorsys

    shifted = F.adjust_hue(f, 0.25)
    for y, x in [(0, 0), (2, 3)]:
        h, s, v = colorsys.rgb_to_hsv(*f[y, x])
        np.testing.assert_allclose(
            shifted[y, x], colorsys.hsv_to_rgb((h + 0.25) % 1, s, v), atol=1e-5
        )
    c = F.adjust_contrast(f, 0.0)
    np.testing.assert_allclose(c, np.full_like(f, c[0, 0, 0]), atol=1e-6)
    with pytest.raises(ValueError):
        F.adjust_hue(f, 0.7)


def test_color_jitter_random_and_kinds():
    a = img(4, 5)
    cj = T.ColorJitter(0.4, 0.4, 0.4, 0.1)
    ember.manual_seed(0)
    out = cj(a)
    assert out.dtype == np.uint8 and out.shape == a.shape and not np.array_equal(out, a)
    assert np.asarray(cj(Image.fromarray(a))).shape == a.shape
    t = cj(T.ToTensor()(a))
    assert tuple(t.shape) == (3, 4, 5) and t.numpy().min() >= 0 and t.numpy().max() <= 1
    with pytest.raises(ValueError):
        T.ColorJitter(hue=0.6)


def test_compose_lambda_and_reproducibility():
    pipe = T.Compose(
        [
            T.RandomCrop(6, padding=2),
            T.RandomHorizontalFlip(),
            T.ColorJitter(0.2, 0.2),
            T.ToTensor(),
            T.Normalize([0.5] * 3, [0.5] * 3),
            T.Lambda(lambda t: t.numpy() * 2),
        ]
    )
    a = img(6, 6)
    ember.manual_seed(5)
    r1 = [pipe(a) for _ in range(5)]
    ember.manual_seed(5)
    r2 = [pipe(a) for _ in range(5)]
    for x, y in zip(r1, r2):
        np.testing.assert_array_equal(x, y)
    assert len({x.tobytes() for x in r1}) > 1
    assert "RandomCrop" in repr(pipe)
    with pytest.raises(TypeError):
        T.Lambda(3)
