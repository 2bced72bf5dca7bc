"""BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): `jgan.families.bigan` with
BigBiGAN's unary terms off, a deterministic encoder and the non-saturating game.

    --config=experiments/configs/bigan.py:mnist|fashion_mnist|cifar10[,small][,runlocal]

The networks, data and optimizers of `bigbigan.py` (so that the two compare at the same
encoder architecture); Adam(2e-4, b1=0.5). Append `,runlocal` for the small variant
that tests run.
"""
from experiments.configs import bigbigan


def get_config(arg: str = "mnist"):
    _, options = bigbigan.parse(arg, "bigan.py")
    if "large_batch" in options:
        raise ValueError("bigan.py has no large_batch variant (bigbigan.py has).")
    c = bigbigan.get_config(arg)
    c.bigan.unary_x = False
    c.bigan.unary_z = False
    c.bigan.stochastic = False
    c.game.loss_type = "non_saturating"
    for o in c.optimizer.values():
        o.b1 = 0.5
    return c
