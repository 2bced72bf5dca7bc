"""Adversarial autoencoders (Makhzani et al. 2016; `jgan.families.aae`) on MNIST or
Fashion-MNIST.

    --config=experiments/configs/aae.py:mnist                 2-D codes, N(0, I) prior
    --config=experiments/configs/aae.py:mnist,mixture         10 Gaussians (Fig. 2)
    --config=experiments/configs/aae.py:mnist,swiss_roll      the swiss roll (Fig. 2)
    --config=experiments/configs/aae.py:mnist,label_mixture   the label picks the component (Fig. 4)
    --config=experiments/configs/aae.py:mnist,clusters16      unsupervised clustering, 16 or
    --config=experiments/configs/aae.py:mnist,clusters30      30 categories and a 5-D style (Sec. 6)

As the paper's MNIST models: encoder, decoder and code discriminator MLPs of two hidden
layers of 1,000 units (3,000 for clustering), ReLU (LeakyReLU in the discriminator),
batch 100; the reconstruction phase Adam(1e-3), the adversarial phases Adam(2e-4,
b1=0.5) (1e-3 for clustering), all three decayed linearly to 0 over the second half.
Reconstruction loss: Bernoulli cross-entropy on MNIST, mean squared error on
Fashion-MNIST. Samples: decoded prior draws, reconstructions, and the scatter of 2-D
test codes by label. eval.json: the test reconstruction error, the encoder's linear
probes and k-NN, and the clustering's test error. `,revnet` (or `,resnet`): BigBiGAN's
encoder on 32 px, as bigbigan.py's (`encoder_decoder.use_residual_encoder`); with
`,small`, the encoder of `bigbigan.py:DATASET,small`. Append `,runlocal` for the small
variant that tests run.
"""
import re

from experiments.configs.encoder_decoder import (adam, apply_runlocal, image_data,
                                                 take_encoder_option, teams_config,
                                                 use_residual_encoder)

PRIORS = ("gaussian", "mixture", "swiss_roll", "label_mixture")
USAGE = ("'mnist|fashion_mnist[,gaussian|mixture|swiss_roll|label_mixture|clustersK]"
         "[,revnet|resnet[,small]][,runlocal]'")


def get_config(arg: str = "mnist"):
    parts, encoder = take_encoder_option([p for p in arg.split(",") if p])
    runlocal = "runlocal" in parts
    parts = [p for p in parts if p != "runlocal"]
    priors = parts[1:] or ["gaussian"]
    clusters = re.fullmatch(r"clusters(\d+)", priors[0])
    if (not parts or parts[0] not in ("mnist", "fashion_mnist") or len(priors) != 1
            or (priors[0] not in PRIORS and not clusters)):
        raise ValueError(f"aae.py takes {USAGE}, got {arg!r}.")
    c = teams_config("aae", {"reconstruction": adam(1e-3),
                             "discriminator": adam(2e-4, b1=0.5),
                             "generator": adam(2e-4, b1=0.5)})
    for o in c.optimizer.values():
        o.schedule = "linear_decay"
    image_data(c, parts[0])
    a = c.aae
    a.loss = "bernoulli" if parts[0] == "mnist" else "mse"
    if clusters:
        a.prior = "clusters"
        a.num_clusters = int(clusters.group(1))
        a.latent_dim = 5
        a.hidden = (3000, 3000)
        a.discriminator_hidden = (3000, 3000)
        # Without it the cluster discriminator tells softmax outputs from exact one-hots
        # (accuracy 0.95) and the encoder uses 3 of 16 clusters (jgan.families.aae).
        a.discriminator_input_noise = 0.3
        # A weak adversary leaves the 5-D style free to carry the class and the decoder
        # ignores the category: 1,000 steps end at 67.8 % error with 2e-4, 46.3 % with
        # 1e-3. 3e-3 (42.6 %) diverged with 30 clusters (docs/encoders.md).
        for team in ("discriminator", "generator"):
            c.optimizer[team].learning_rate = 1e-3
    else:
        a.prior = priors[0]
    c.batch_size = 100
    c.num_steps = 30_000
    c.log_every = 200
    c.sample_every = 2_000
    c.checkpoint_every = 5_000
    if encoder:
        use_residual_encoder(c, "aae", encoder)
        a.latent_dim = 5 if clusters else a.latent_dim
    if runlocal:
        apply_runlocal(c, "aae")
        a.latent_dim = 2
        a.num_clusters = min(a.num_clusters, 4)
        a.discriminator_hidden = (16,)
        a.scatter_examples = 32
        a.cluster_examples = 64
    return c
