# ruff: noqa: B007 -- written as PyTorch tutorials write it (unused loop variables)
"""One WGAN-GP-flavoured training loop on 2-D points: a generator and a discriminator with
their own optimizers, ``.detach()``, ``zero_grad(set_to_none=True)``, BCE-with-logits,
``requires_grad_(False)`` toggling and a gradient penalty from ``torch.autograd.grad``."""

import numpy as np
import torch
import torch.nn as nn


class Generator(nn.Module):
    def __init__(self, nz=4):
        super().__init__()
        self.main = nn.Sequential(
            nn.Linear(nz, 16),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(16, 16),
            nn.Tanh(),
            nn.Linear(16, 2),
        )

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Linear(2, 16),
            nn.LeakyReLU(0.2),
            nn.Linear(16, 16),
            nn.SiLU(),
            nn.Linear(16, 1),
        )

    def forward(self, input):
        return self.main(input).view(-1)


def gradient_penalty(netD, real, fake, alpha):
    interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    d_interpolates = netD(interpolates)
    grad_outputs = torch.ones_like(d_interpolates)
    gradients = torch.autograd.grad(
        outputs=d_interpolates,
        inputs=interpolates,
        grad_outputs=grad_outputs,
        create_graph=True,
        retain_graph=True,
        only_inputs=True,
    )[0]
    gradients = gradients.view(gradients.size(0), -1)
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean()


def run():
    rng = np.random.RandomState(3)
    netG, netD = Generator().double(), Discriminator().double()
    for net in (netG, netD):
        for name, param in net.named_parameters():
            param.data.copy_(torch.tensor(rng.normal(0.0, 0.5, size=param.shape)))

    criterion = nn.BCEWithLogitsLoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-3, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-3, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0
    lambda_gp = 0.5

    errD_hist, errG_hist, gp_hist, D_x_hist = [], [], [], []
    for i in range(4):
        real = torch.tensor(rng.randn(8, 2) * 0.5 + 1.0)
        noise = torch.tensor(rng.randn(8, 4))
        alpha = torch.tensor(rng.rand(8, 1))
        b_size = real.size(0)

        # (1) update D: maximize log(D(x)) + log(1 - D(G(z)))
        for p in netD.parameters():
            p.requires_grad_(True)
        netD.zero_grad(set_to_none=True)
        label = torch.full((b_size,), real_label, dtype=torch.float64)
        output = netD(real)
        errD_real = criterion(output, label)
        D_x = torch.sigmoid(output).mean().item()
        fake = netG(noise)
        output = netD(fake.detach())
        errD_fake = criterion(output, torch.full_like(label, fake_label))
        gp = gradient_penalty(netD, real, fake.detach(), alpha)
        errD = errD_real + errD_fake + lambda_gp * gp
        errD.backward()
        optimizerD.step()

        # (2) update G: maximize log(D(G(z))), D frozen
        for p in netD.parameters():
            p.requires_grad_(False)
        optimizerG.zero_grad(set_to_none=True)
        label = torch.full((b_size,), real_label, dtype=torch.float64)
        output = netD(fake)
        errG = criterion(output, label)
        errG.backward()
        optimizerG.step()

        errD_hist.append(errD.item())
        errG_hist.append(errG.item())
        gp_hist.append(gp.item())
        D_x_hist.append(D_x)

    d_grads_none = all(p.grad is None for p in netD.parameters())
    with torch.no_grad():
        samples = netG(torch.tensor(rng.randn(5, 4)))
    return {
        "errD": np.array(errD_hist),
        "errG": np.array(errG_hist),
        "gp": np.array(gp_hist),
        "D_x": np.array(D_x_hist),
        "samples": samples,
        "g_grad": netG.main[0].weight.grad,
        "d_weight": netD.main[2].weight,
        "d_grad_kept": netD.main[4].weight.grad,
        "d_grads_none": d_grads_none,
        "d_requires_grad": netD.main[0].weight.requires_grad,
    }
