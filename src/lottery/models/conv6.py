"""``conv6``: the paper's Conv-6 (Frankle & Carbin 2019, Figure 2 and Table 1): 3 x 3 convs with zero
padding 1 and ReLU, 64, 64, 2 x 2 max pool, 128, 128, pool, 256, 256, pool, then fc 256, 256 (ReLU) and
the output. On CIFAR-10 (3 x 32 x 32) its conv layers hold 1.1M weights, as Table 1 says; the whole
network 2.26M (4 x 4 x 256 = 4,096 features into fc 256: 1.05M), not Table 1's 1.7M, which these
layers - the ones Figure 2 and Table 1 list - do not give (``tests/test_models.py`` states both).
"""

from __future__ import annotations

from lottery.models import Conv, Dense, Model, Pool


class Conv6(Model):
    name = "conv6"
    description = (
        "the paper's Conv-6: conv 64, 64, pool, 128, 128, pool, 256, 256, pool (3x3), fc 256, 256, output"
    )
    LAYERS = (
        Conv(64), Conv(64), Pool(), Conv(128), Conv(128), Pool(), Conv(256), Conv(256), Pool(),
        Dense(256), Dense(256), Dense(None),
    )  # fmt: skip


MODEL = Conv6()
