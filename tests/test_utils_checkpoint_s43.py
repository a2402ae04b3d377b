"""``ember.utils.checkpoint`` (``torch.utils.checkpoint``'s path): ``checkpoint`` and
``checkpoint_sequential`` give PyTorch's values and gradients, compiled too."""

import numpy as np
import pytest
import torch

import ember
from ember.utils.checkpoint import checkpoint, checkpoint_sequential


def _nets():
    ember.manual_seed(0)
    net = ember.nn.Sequential(
        *[m for _ in range(5) for m in (ember.nn.Linear(4, 4), ember.nn.Tanh())]
    )
    tnet = torch.nn.Sequential(
        *[m for _ in range(5) for m in (torch.nn.Linear(4, 4), torch.nn.Tanh())]
    )
    tnet.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in net.state_dict().items()})
    return net, tnet


@pytest.mark.parametrize("segments", [1, 2, 3, 10])
def test_checkpoint_sequential_matches_torch(segments):
    net, tnet = _nets()
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    xe, xt = ember.from_numpy(x).requires_grad_(), torch.from_numpy(x).requires_grad_()
    ye = checkpoint_sequential(net, segments, xe, use_reentrant=False)
    yt = torch.utils.checkpoint.checkpoint_sequential(tnet, segments, xt, use_reentrant=False)
    ye.pow(2).sum().backward()
    yt.pow(2).sum().backward()
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(net.named_parameters(), tnet.parameters()):
        np.testing.assert_allclose(
            p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=name
        )


def test_checkpoint_of_a_block_matches_torch_and_the_module_path():
    import ember.utils

    assert ember.utils.checkpoint.checkpoint is ember.autograd.checkpoint
    net, tnet = _nets()
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    xe, xt = ember.from_numpy(x).requires_grad_(), torch.from_numpy(x).requires_grad_()
    checkpoint(net, xe, use_reentrant=False).sum().backward()
    torch.utils.checkpoint.checkpoint(tnet, xt, use_reentrant=False).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_checkpointed_training_step_compiles_like_eager():
    def run(compiled):
        net, _ = _nets()
        opt = ember.optim.SGD(net.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            loss = ((checkpoint_sequential(net, 2, x, use_reentrant=False) - y) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        f = ember.compile(step) if compiled else step
        rng = np.random.default_rng(2)
        out = []
        for b in (3, 4, 3):
            x = ember.from_numpy(rng.standard_normal((b, 4)).astype(np.float32))
            y = ember.from_numpy(rng.standard_normal((b, 4)).astype(np.float32))
            out.append(f(x, y).item())
        return out

    np.testing.assert_allclose(run(True), run(False), rtol=1e-6)


def test_bad_arguments():
    net, _ = _nets()
    with pytest.raises(ValueError, match="segments must be a positive int"):
        checkpoint_sequential(net, 0, ember.ones(1, 4))
    with pytest.raises(TypeError, match="not a dict"):
        checkpoint_sequential({"a": net}, 1, ember.ones(1, 4))
