# ruff: noqa: B007 -- written as PyTorch tutorials write it (unused loop variables)
"""A small UNet for binary segmentation: transposed convolutions, skip connections with
``torch.cat``, bilinear ``F.interpolate``, GroupNorm and a weighted BCE-with-logits loss."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class DoubleConv(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1),
            nn.GroupNorm(2, out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
            nn.GroupNorm(num_groups=2, num_channels=out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.block(x)


class UNet(nn.Module):
    def __init__(self, in_ch=2, out_ch=1, base=4):
        super().__init__()
        self.inc = DoubleConv(in_ch, base)
        self.down1 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(base, base * 2))
        self.down2 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(base * 2, base * 4))
        self.up1 = nn.ConvTranspose2d(base * 4, base * 2, kernel_size=2, stride=2)
        self.conv1 = DoubleConv(base * 4, base * 2)
        self.up2 = nn.ConvTranspose2d(base * 2, base, kernel_size=2, stride=2)
        self.conv2 = DoubleConv(base * 2, base)
        self.outc = nn.Conv2d(base, out_ch, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        u = self.up1(x3)
        # pad in case the sizes differ (odd inputs)
        diffY = x2.size()[2] - u.size()[2]
        diffX = x2.size()[3] - u.size()[3]
        u = F.pad(u, [diffX // 2, diffX - diffX // 2, diffY // 2, diffY - diffY // 2])
        u = self.conv1(torch.cat([x2, u], dim=1))
        u = self.up2(u)
        u = self.conv2(torch.cat((x1, u), 1))
        logits = self.outc(u)
        return logits


def run():
    rng = np.random.RandomState(1)
    model = UNet().double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.tensor(rng.randn(*p.shape) * 0.3))

    x = torch.tensor(rng.randn(2, 2, 8, 8))
    mask = torch.tensor((rng.rand(2, 1, 16, 16) > 0.7).astype(np.float64))
    pos_weight = torch.tensor([3.0], dtype=torch.float64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.99))

    losses = []
    for step in range(3):
        optimizer.zero_grad()
        logits = model(x)
        logits = F.interpolate(logits, scale_factor=2, mode="bilinear", align_corners=False)
        loss = F.binary_cross_entropy_with_logits(logits, mask, pos_weight=pos_weight)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    model.eval()
    with torch.no_grad():
        logits = model(x)
        up = F.interpolate(logits, size=(16, 16), mode="bilinear", align_corners=False)
        down = F.interpolate(logits, size=(5, 5), mode="bilinear", align_corners=False)
        pred = (torch.sigmoid(up) > 0.5).float()
        inter = (pred * mask).sum(dim=(1, 2, 3))
        union = pred.sum(dim=(1, 2, 3)) + mask.sum(dim=(1, 2, 3))
        dice = (2 * inter + 1e-6) / (union + 1e-6)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="sum")
    return {
        "losses": np.array(losses),
        "logits": logits,
        "up": up,
        "down": down,
        "dice": dice,
        "sum_loss": loss_fn(up, mask),
        "up1_grad": model.up1.weight.grad,
        "gn_grad": model.inc.block[1].weight.grad,
        "exp_avg_sq": optimizer.state[model.outc.weight]["exp_avg_sq"],
    }
