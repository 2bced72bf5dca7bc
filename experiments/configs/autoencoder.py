"""A convolutional autoencoder (`jgan.families.autoencoder`) on MNIST or Fashion-MNIST.

    --config=experiments/configs/autoencoder.py:mnist          (Bernoulli cross-entropy)
    --config=experiments/configs/autoencoder.py:fashion_mnist  (mean squared error)

A 32-dimensional code, `ConvEncoder` / `ConvDecoder` of width 32 with a 256-unit dense
layer, Adam(1e-3). `,revnet` (or `,resnet`): BigBiGAN's encoder on 32 px instead, as
bigbigan.py's (`encoder_decoder.use_residual_encoder`); with `,small`, the encoder of
`bigbigan.py:DATASET,small`. Samples: test images above their
reconstructions; eval.json: the test reconstruction error, the encoder's linear probes
and k-NN. Append `,runlocal` for the small variant that tests run.
"""
from experiments.configs.encoder_decoder import (apply_runlocal, image_data, one_team_config,
                                                 take_encoder_option, use_residual_encoder)


def get_config(arg: str = "mnist"):
    parts, encoder = take_encoder_option([p for p in arg.split(",") if p])
    if not parts or parts[0] not in ("mnist", "fashion_mnist") or set(parts[1:]) - {"runlocal"}:
        raise ValueError(f"autoencoder.py takes 'mnist|fashion_mnist[,revnet|resnet[,small]][,runlocal]', "
                         f"got {arg!r}.")
    c = image_data(one_team_config("autoencoder"), parts[0])
    if encoder:
        use_residual_encoder(c, "autoencoder", encoder)
    c.autoencoder.loss = "bernoulli" if parts[0] == "mnist" else "mse"
    c.batch_size = 128
    c.num_steps = 20_000
    c.log_every = 200
    c.sample_every = 2_000
    c.checkpoint_every = 5_000
    if "runlocal" in parts:
        apply_runlocal(c, "autoencoder")
    return c
