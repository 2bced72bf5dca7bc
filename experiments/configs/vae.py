"""Variational autoencoders (Kingma & Welling 2014; `jgan.families.vae`).

    --config=experiments/configs/vae.py:mnist          dynamically binarized MNIST, Bernoulli
    --config=experiments/configs/vae.py:fashion_mnist  Fashion-MNIST in [-1, 1], Gaussian
    --config=experiments/configs/vae.py:mixture        the 2-D ring (--config.data.name=grid
                                                        for the grid), MLPs, Gaussian

Images: a 32-dimensional z, `ConvEncoder` / `ConvDecoder` of width 64 with a 512-unit
dense layer, Adam(1e-3) decayed linearly to 0 over the second half, batch 128, the ELBO
with one posterior sample. eval.json: the test ELBO and the importance-weighted bound
with k = 5,000 (`vae.iwae_samples`), in nats, and the encoder's linear probes and k-NN.
`,revnet` (or `,resnet`): BigBiGAN's encoder on 32 px, as bigbigan.py's
(`encoder_decoder.use_residual_encoder`); with `,small`, the encoder of
`bigbigan.py:DATASET,small`. Append `,runlocal` for the small variant that tests run (k = 8 on 32 test images).
"""
from experiments.configs.encoder_decoder import (apply_runlocal, image_data, one_team_config,
                                                 take_encoder_option, use_residual_encoder)

DATA = ("mnist", "fashion_mnist", "mixture")


def get_config(arg: str = "mnist"):
    parts, encoder = take_encoder_option([p for p in arg.split(",") if p])
    if (not parts or parts[0] not in DATA or set(parts[1:]) - {"runlocal"}
            or (encoder and parts[0] == "mixture")):
        raise ValueError(f"vae.py takes '{'|'.join(DATA)}[,revnet|resnet[,small]][,runlocal]' (the "
                         f"residual encoders for images), got {arg!r}.")
    data = parts[0]
    c = one_team_config("vae")
    v = c.vae
    if data == "mixture":
        c.data.kind = "mixture"
        c.data.name = "ring"
        v.network = "mlp"
        v.likelihood = "gaussian"
        v.latent_dim = 2
        v.hidden = (128, 128, 128)
        v.eval_examples = 10_000
        v.eval_batch_size = 1_000
        v.iwae_samples = 1_000
        c.batch_size = 256
        c.num_steps = 30_000
        c.steps_per_call = 500
        c.log_every = 500
        c.sample_every = 5_000
        c.checkpoint_every = 5_000
    else:
        image_data(c, data)
        v.likelihood = "bernoulli" if data == "mnist" else "gaussian"
        v.latent_dim = 32
        v.width = 64
        v.dense_hidden = 512
        c.optimizer.vae.schedule = "linear_decay"
        c.batch_size = 128
        c.num_steps = 100_000
        c.log_every = 500
        c.sample_every = 5_000
        c.checkpoint_every = 5_000
        if encoder:
            use_residual_encoder(c, "vae", encoder)
    if "runlocal" in parts:
        apply_runlocal(c, "vae")
        v.latent_dim = 2 if data == "mixture" else 4
        v.iwae_samples = 8
        v.iwae_chunk = 4
        if data == "mixture":
            c.num_steps = 8
            c.steps_per_call = 2
            c.log_every = c.sample_every = c.checkpoint_every = 4
    return c
