"""``conv2``: the paper's Conv-2 (Frankle & Carbin 2019, Figure 2 and Table 1; a scaled-down VGG for
CIFAR-10): 3 x 3 convs with zero padding 1 and ReLU, 64, 64, 2 x 2 max pool, then fc 256, 256 (ReLU)
and the output. On CIFAR-10 (3 x 32 x 32): 4.3M weights, 38K of them in the conv layers (Table 1).
"""

from __future__ import annotations

from lottery.models import Conv, Dense, Model, Pool


class Conv2(Model):
    name = "conv2"
    description = "the paper's Conv-2: conv 64, 64 (3x3), pool, fc 256, 256, output"
    LAYERS = (Conv(64), Conv(64), Pool(), Dense(256), Dense(256), Dense(None))


MODEL = Conv2()
