"""``conv4``: the paper's Conv-4 (Frankle & Carbin 2019, Figure 2 and Table 1): 3 x 3 convs with zero
padding 1 and ReLU, 64, 64, 2 x 2 max pool, 128, 128, pool, then fc 256, 256 (ReLU) and the output. On
CIFAR-10 (3 x 32 x 32): 2.4M weights, 260K of them in the conv layers (Table 1).
"""

from __future__ import annotations

from lottery.models import Conv, Dense, Model, Pool


class Conv4(Model):
    name = "conv4"
    description = "the paper's Conv-4: conv 64, 64, pool, 128, 128, pool (3x3), fc 256, 256, output"
    LAYERS = (
        Conv(64), Conv(64), Pool(), Conv(128), Conv(128), Pool(), Dense(256), Dense(256), Dense(None),
    )  # fmt: skip


MODEL = Conv4()
