"""``lenet5``: LeNet-5 (LeCun et al. 1998) as it is usually adapted to 28 x 28 inputs and trained today -
ReLU for the scaled tanh, max pooling for the trainable subsampling, full connections between the two
conv layers (not the paper's partial C3 table), a plain linear output for the RBF units:

conv 6@5x5 (zero padding 2, so a 28 x 28 image keeps its size, as the original's 32 x 32 input with
the digit in its centre), ReLU, 2 x 2 max pool, conv 16@5x5 (no padding), ReLU, 2 x 2 max pool, fc 120,
ReLU, fc 84, ReLU, fc ``num_classes``. On 28 x 28 images the first fc layer reads 16 x 5 x 5 = 400
features (the original's); on 32 x 32 ones (CIFAR-10), 16 x 6 x 6 = 576.
"""

from __future__ import annotations

from lottery.models import Conv, Dense, Model, Pool


class LeNet5(Model):
    name = "lenet5"
    description = "LeNet-5: conv 6@5x5 (padding 2), pool, conv 16@5x5, pool, fc 120, 84, output"
    LAYERS = (Conv(6, 5, 2), Pool(), Conv(16, 5, 0), Pool(), Dense(120), Dense(84), Dense(None))


MODEL = LeNet5()
