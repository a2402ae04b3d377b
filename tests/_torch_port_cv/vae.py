# ruff: noqa: B007, UP008, RUF059 -- written as PyTorch tutorials write it (unused names, super(Cls, self))
"""A VAE on flattened 4x4 images: the reparameterization trick (the noise passed in, and
``torch.randn_like`` for a shape check), the KL term, Adam and gradient-norm clipping."""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class VAE(nn.Module):
    def __init__(self, in_dim=16, hidden=12, latent=3):
        super(VAE, self).__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, in_dim)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar, eps=None):
        std = torch.exp(0.5 * logvar)
        if eps is None:
            eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x, eps=None):
        mu, logvar = self.encode(x.view(-1, 16))
        z = self.reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 16), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD, BCE, KLD


def run():
    rng = np.random.RandomState(2)
    model = VAE()
    sd = {
        k: torch.tensor(rng.randn(*v.shape) * 0.4, dtype=torch.float32)
        for k, v in model.state_dict().items()
    }
    model.load_state_dict(sd)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4, amsgrad=True)
    data = torch.from_numpy(rng.rand(10, 1, 4, 4).astype("float32"))

    losses, klds, norms = [], [], []
    model.train()
    for step in range(4):
        eps = torch.from_numpy(rng.randn(10, 3).astype(np.float32))
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data, eps)
        loss, bce, kld = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        total_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
        optimizer.step()
        losses.append(loss.item() / len(data))
        klds.append(kld.item())
        norms.append(float(total_norm))

    model.eval()
    with torch.no_grad():
        recon, mu, logvar = model(data)  # random eps: only the shape and mu/logvar compared
        z = torch.from_numpy(rng.randn(5, 3).astype(np.float32))
        sample = model.decode(z).view(5, 1, 4, 4)
        noise = torch.randn_like(mu)
    return {
        "losses": np.array(losses),
        "klds": np.array(klds),
        "norms": np.array(norms),
        "mu": mu,
        "logvar": logvar,
        "recon_shape": np.array(recon.shape),
        "noise_shape": np.array(noise.shape),
        "noise_dtype_is_float32": noise.dtype == torch.float32,
        "sample": sample,
        "fc1_grad": model.fc1.weight.grad,
        "max_exp_avg_sq": optimizer.state[model.fc4.bias]["max_exp_avg_sq"],
    }
