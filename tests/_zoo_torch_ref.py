"""PyTorch reference implementations of the zoo architectures, written independently with the
module names of torchvision / Hugging Face, so weights move to and from ``ember.models`` by
state-dict name (torchvision and transformers are not dependencies of the tests)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- vision


class TBasic(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1, down=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = down

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + idt)


class TBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1, down=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = down

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + idt)


class TResNet(nn.Module):
    def __init__(self, block, layers, num_classes):
        super().__init__()
        self.cin = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            setattr(self, f"layer{i + 1}", self._layer(block, planes, n, 1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _layer(self, block, planes, n, stride):
        down = None
        if stride != 1 or self.cin != planes * block.expansion:
            down = nn.Sequential(
                nn.Conv2d(self.cin, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        blocks = [block(self.cin, planes, stride, down)]
        self.cin = planes * block.expansion
        blocks += [block(self.cin, planes) for _ in range(n - 1)]
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TVGG(nn.Module):
    def __init__(self, cfg, bn, num_classes, hidden):
        super().__init__()
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers.append(nn.Conv2d(c, v, 3, padding=1))
            if bn:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU())
            c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(c * 49, hidden),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _cbr(cin, cout, k=3, s=1, g=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=g, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(),
    )


class TInvRes(nn.Module):
    def __init__(self, cin, cout, s, t):
        super().__init__()
        h = cin * t
        layers = [] if t == 1 else [_cbr(cin, h, 1)]
        layers += [_cbr(h, h, 3, s, h), nn.Conv2d(h, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.res = s == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.res else self.conv(x)


class TMobileNetV2(nn.Module):
    # width 1.0 only: every channel count is already a multiple of 8
    def __init__(self, num_classes):
        super().__init__()
        setting = [
            [1, 16, 1, 1],
            [6, 24, 2, 2],
            [6, 32, 3, 2],
            [6, 64, 4, 2],
            [6, 96, 3, 1],
            [6, 160, 3, 2],
            [6, 320, 1, 1],
        ]
        feats, c = [_cbr(3, 32, s=2)], 32
        for t, co, n, s in setting:
            for i in range(n):
                feats.append(TInvRes(c, co, s if i == 0 else 1, t))
                c = co
        feats.append(_cbr(c, 1280, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class TLeNet5(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
            nn.MaxPool2d(2),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )  # fmt: skip

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


# ---------------------------------------------------------------- GPT-2 (HF layout: Conv1D)


class Conv1D(nn.Module):
    """Hugging Face's GPT-2 projection: weight stored (in, out)."""

    def __init__(self, nout, nin):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(nin, nout) * 0.02)
        self.bias = nn.Parameter(torch.randn(nout) * 0.02)

    def forward(self, x):
        return x @ self.weight + self.bias


class TGPT2Attn(nn.Module):
    def __init__(self, d, heads, npos):
        super().__init__()
        self.c_attn, self.c_proj, self.h = Conv1D(3 * d, d), Conv1D(d, d), heads
        self.register_buffer("bias", torch.tril(torch.ones(npos, npos)).view(1, 1, npos, npos))

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (t.view(b, n, self.h, d // self.h).transpose(1, 2) for t in (q, k, v))
        w = q @ k.transpose(-1, -2) / math.sqrt(d // self.h)
        w = w.masked_fill(self.bias[:, :, :n, :n] == 0, torch.finfo(w.dtype).min)
        y = torch.softmax(w, -1) @ v
        return self.c_proj(y.transpose(1, 2).reshape(b, n, d))


class TGPT2Block(nn.Module):
    def __init__(self, d, heads, npos):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = TGPT2Attn(d, heads, npos)
        self.mlp = nn.Module()
        self.mlp.c_fc, self.mlp.c_proj = Conv1D(4 * d, d), Conv1D(d, 4 * d)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        h = self.ln_2(x)
        # gelu_new, written out as GPT-2's original formula
        h = self.mlp.c_fc(h)
        h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
        return x + self.mlp.c_proj(h)


class TGPT2(nn.Module):
    def __init__(self, vocab, npos, d, layers, heads):
        super().__init__()
        self.transformer = nn.Module()
        t = self.transformer
        t.wte, t.wpe = nn.Embedding(vocab, d), nn.Embedding(npos, d)
        t.h = nn.ModuleList([TGPT2Block(d, heads, npos) for _ in range(layers)])
        t.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = t.wte.weight

    def forward(self, ids):
        t = self.transformer
        x = t.wte(ids) + t.wpe(torch.arange(ids.shape[1]))
        for blk in t.h:
            x = blk(x)
        return self.lm_head(t.ln_f(x))


# ---------------------------------------------------------------- BERT (HF names)


class _Lin(nn.Module):
    def __init__(self, cin, cout, eps):
        super().__init__()
        self.dense = nn.Linear(cin, cout)
        self.LayerNorm = nn.LayerNorm(cout, eps=eps)

    def forward(self, x, res):
        return self.LayerNorm(self.dense(x) + res)


class TBertLayer(nn.Module):
    def __init__(self, d, heads, inner, eps):
        super().__init__()
        self.attention = nn.Module()
        self.attention.self = nn.Module()
        s = self.attention.self
        s.query, s.key, s.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attention.output = _Lin(d, d, eps)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(d, inner)
        self.output = _Lin(inner, d, eps)
        self.h = heads

    def forward(self, x, add_mask):
        b, n, d = x.shape
        s = self.attention.self
        q, k, v = (
            f(x).view(b, n, self.h, d // self.h).transpose(1, 2) for f in (s.query, s.key, s.value)
        )
        w = q @ k.transpose(-1, -2) / math.sqrt(d // self.h) + add_mask
        y = (torch.softmax(w, -1) @ v).transpose(1, 2).reshape(b, n, d)
        x = self.attention.output(y, x)
        h = self.intermediate.dense(x)
        h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))  # exact GELU
        return self.output(h, x)


class TBert(nn.Module):
    def __init__(self, vocab, d, layers, heads, inner, npos=512, types=2, eps=1e-12):
        super().__init__()
        self.embeddings = nn.Module()
        e = self.embeddings
        e.word_embeddings = nn.Embedding(vocab, d)
        e.position_embeddings = nn.Embedding(npos, d)
        e.token_type_embeddings = nn.Embedding(types, d)
        e.LayerNorm = nn.LayerNorm(d, eps=eps)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(
            [TBertLayer(d, heads, inner, eps) for _ in range(layers)]
        )
        self.pooler = nn.Module()
        self.pooler.dense = nn.Linear(d, d)

    def forward(self, ids, mask=None, types=None):
        e = self.embeddings
        types = torch.zeros_like(ids) if types is None else types
        x = e.word_embeddings(ids) + e.position_embeddings(torch.arange(ids.shape[1]))
        x = e.LayerNorm(x + e.token_type_embeddings(types))
        mask = torch.ones_like(ids) if mask is None else mask
        add = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.encoder.layer:
            x = layer(x, add)
        return x, torch.tanh(self.pooler.dense(x[:, 0]))


# ---------------------------------------------------------------- GoogLeNet (torchvision layout)


class TBasicConv2d(nn.Module):
    def __init__(self, cin, cout, k, s=1, p=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, p, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class TInception(nn.Module):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, pp):
        super().__init__()
        self.branch1 = TBasicConv2d(cin, c1, 1)
        self.branch2 = nn.Sequential(TBasicConv2d(cin, c3r, 1), TBasicConv2d(c3r, c3, 3, p=1))
        self.branch3 = nn.Sequential(TBasicConv2d(cin, c5r, 1), TBasicConv2d(c5r, c5, 3, p=1))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, 1, 1, ceil_mode=True), TBasicConv2d(cin, pp, 1)
        )

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class TInceptionAux(nn.Module):
    def __init__(self, cin, n):
        super().__init__()
        self.conv = TBasicConv2d(cin, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, n)

    def forward(self, x):
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4))).flatten(1)
        return self.fc2(F.relu(self.fc1(x)))


_INCEPTION = [
    ("3a", 192, 64, 96, 128, 16, 32, 32),
    ("3b", 256, 128, 128, 192, 32, 96, 64),
    ("4a", 480, 192, 96, 208, 16, 48, 64),
    ("4b", 512, 160, 112, 224, 24, 64, 64),
    ("4c", 512, 128, 128, 256, 24, 64, 64),
    ("4d", 512, 112, 144, 288, 32, 64, 64),
    ("4e", 528, 256, 160, 320, 32, 128, 128),
    ("5a", 832, 256, 160, 320, 32, 128, 128),
    ("5b", 832, 384, 192, 384, 48, 128, 128),
]


class TGoogLeNet(nn.Module):
    def __init__(self, n=1000, aux=False):
        super().__init__()
        self.conv1 = TBasicConv2d(3, 64, 7, 2, 3)
        self.conv2 = TBasicConv2d(64, 64, 1)
        self.conv3 = TBasicConv2d(64, 192, 3, p=1)
        for name, *cfg in _INCEPTION:
            setattr(self, "inception" + name, TInception(*cfg))
        if aux:
            self.aux1 = TInceptionAux(512, n)
            self.aux2 = TInceptionAux(528, n)
        self.fc = nn.Linear(1024, n)

    def forward(self, x):
        pool = lambda t, k=3: F.max_pool2d(t, k, 2, ceil_mode=True)
        x = pool(self.conv3(self.conv2(pool(self.conv1(x)))))
        x = pool(self.inception3b(self.inception3a(x)))
        x = self.inception4d(self.inception4c(self.inception4b(self.inception4a(x))))
        x = pool(self.inception4e(x), 2)
        x = self.inception5b(self.inception5a(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
