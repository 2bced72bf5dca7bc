"""VAE-GAN (Larsen et al. 2016; `jgan.families.vaegan`) on MNIST or Fashion-MNIST.

    --config=experiments/configs/vaegan.py:mnist|fashion_mnist[,runlocal]

The encoder and decoder of `vae.py`'s image configs (a 32-dimensional z, `ConvEncoder` /
`ConvDecoder` of width 64 with a 512-unit dense layer), so that the two compare at the
same networks; a DCGAN discriminator of width 32 with layer norm, whose convolutional
trunk is the feature space of the likelihood. As the paper: RMSProp(3e-4) for each of the
three teams, all three gradients at one point (simultaneous updates), batch 64; gamma 1
(`vaegan.gamma`). Append `,runlocal` for the small variant that tests run.
"""
import ml_collections

from experiments.configs.encoder_decoder import apply_runlocal, image_data, teams_config


def rmsprop(learning_rate: float) -> ml_collections.ConfigDict:
    o = ml_collections.ConfigDict()
    o.name = "rmsprop"
    o.learning_rate = learning_rate
    o.schedule = "constant"
    o.b1 = 0.9      # read by adam only
    o.b2 = 0.999
    o.clip_weights = 0.0
    return o


def get_config(arg: str = "mnist"):
    parts = [p for p in arg.split(",") if p]
    if not parts or parts[0] not in ("mnist", "fashion_mnist") or set(parts[1:]) - {"runlocal"}:
        raise ValueError(f"vaegan.py takes 'mnist|fashion_mnist[,runlocal]', got {arg!r}.")
    c = teams_config("vaegan", {team: rmsprop(3e-4)
                                for team in ("encoder", "decoder", "discriminator")})
    image_data(c, parts[0])
    v = c.vaegan
    v.latent_dim = 32
    v.width = 64
    v.dense_hidden = 512
    c.game.update_rule = "simultaneous"
    c.batch_size = 64
    c.num_steps = 30_000
    c.log_every = 200
    c.sample_every = 2_000
    c.checkpoint_every = 5_000
    if "runlocal" in parts:
        apply_runlocal(c, "vaegan")
        v.discriminator_width = 4
        v.interpolation_steps = 3
    return c
