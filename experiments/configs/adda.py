"""ADDA (Tzeng et al. 2017; `jgan.families.adda`): a digit classifier adapted from MNIST
to a domain whose labels it never sees.

    --config=experiments/configs/adda.py                   MNIST -> scikit-learn's 8x8
                                                           digits framed as MNIST's (the
                                                           paper's MNIST -> USPS)
    --config=experiments/configs/adda.py:mnist2textured    MNIST -> textured MNIST (as
                                                           MNIST -> MNIST-M)
    append ,runlocal for the small variant that tests run

Stage "pretrain" (10,000 steps, Adam 1e-3): LeNet and a linear classifier on labelled
MNIST. Stage "adapt" (10,000 steps): the target encoder, started from the source
encoder, against a 500-500 domain discriminator with the inverted-label GAN loss,
Adam 2e-4 (b1 0.5) for both; batch 128 of each domain. Both domains read at 28 px, in
one channel (MNIST -> 8x8 digits) or three (textured).
"""
from experiments.configs.base import base_config

TASKS = ("mnist2digits8", "mnist2textured")


def get_config(arg: str = "mnist2digits8"):
    parts = [p for p in arg.split(",") if p]
    runlocal = "runlocal" in parts
    parts = [p for p in parts if p != "runlocal"]
    task = parts[0] if parts else "mnist2digits8"
    if len(parts) > 1 or task not in TASKS:
        raise ValueError(f"adda.py takes '[{'|'.join(TASKS)}][,runlocal]', got {arg!r}.")
    c = base_config("adda")
    c.data.kind = "translation"
    c.data.name = task
    c.data.resolution, c.data.channels = 28, 3 if task == "mnist2textured" else 1
    c.eval.reference_split = "test"
    for o in c.optimizer.values():
        o.learning_rate, o.b1 = 2e-4, 0.5
    c.batch_size = 128
    c.log_every = 100
    c.sample_every = 100_000
    c.checkpoint_every = 1_000
    if runlocal:
        c.adda.pretrain_steps = c.adda.adapt_steps = 2
        c.adda.features = 16
        c.adda.discriminator_hidden = (16,)
        c.adda.eval_examples = 64
        c.adda.eval_batch_size = 32
        c.batch_size = 8
        c.log_every = c.checkpoint_every = 2
    c.num_steps = c.adda.pretrain_steps + c.adda.adapt_steps
    return c
