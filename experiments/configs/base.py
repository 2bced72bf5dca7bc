"""Defaults shared by every experiment config; each config file overrides what differs.

Every key a run reads is declared here or in its family's section, so `--config.x.y=v` overrides of unknown keys
or of the wrong type fail while flags are parsed, before anything compiles.
"""
import ml_collections

from jgan.eval.suite import default_eval_config
from jgan.families import registry


def base_config(family: str = "gan") -> ml_collections.ConfigDict:
    """The defaults, with `family`'s own section `config.<family>` where it has one."""
    c = ml_collections.ConfigDict()
    c.task = "gan"               # what experiments.main trains: gan | classifier
    c.family = family            # a registered family: gan | conditional | acgan | infogan | autoencoder | vae | aae
    c.seed = 0
    c.num_steps = 1000
    c.max_train_seconds = 0.0    # > 0: end training after this long (then checkpoint, eval)
    c.batch_size = 64            # per discriminator update, global over devices
    c.steps_per_call = 1         # steps fused in one jitted call (mixtures, data.on_device)
    c.log_every = 100
    c.sample_every = 1000
    c.checkpoint_every = 1000
    c.checkpoints_kept = 3       # the newest checkpoints kept (0: all, for curves over training)
    c.num_sample_images = 64
    c.progress_bar = True

    c.data = ml_collections.ConfigDict()
    c.data.kind = "tfds"         # mixture | tfds | image_folder
    c.data.name = "mnist"        # mixture: ring | grid; tfds: dataset name
    c.data.split = "train"
    c.data.data_dir = ""         # TFDS data dir ("" = TFDS_DATA_DIR or TFDS's default)
    c.data.root = ""             # image_folder: the folder
    c.data.skip_corrupt = False  # image_folder: skip and count unreadable files
    c.data.class_subfolders = False
    c.data.resolution = 28
    c.data.resize = "bicubic"    # to the resolution: bicubic (resize + crop) | pad (zeros)
    c.data.channels = 1
    c.data.worker_count = 0
    c.data.mixture_scale = 1.0   # 2-D mixtures: means and std times this
    c.data.on_device = False     # hold the dataset in device memory, draw batches there

    # The device mesh (jgan.state_sharding): model = 1 splits the batch over every device
    # and replicates the state; model = M > 1 makes a (devices / M, M) mesh whose "model"
    # axis splits each state array of at least min_shard_size elements (FSDP).
    c.mesh = ml_collections.ConfigDict()
    c.mesh.model = 1
    c.mesh.min_shard_size = 2**14

    c.model = ml_collections.ConfigDict()
    c.model.kind = "dcgan"       # mlp | dcgan | resnet
    c.model.latent_dim = 100               # z; InfoGAN: the noise part of G's input
    c.model.noise_distribution = "normal"  # z ~ N(0, I); infogan also takes "uniform"
    c.model.num_classes = 10               # conditional / acgan: labels in [0, K)
    c.model.width = 64
    c.model.discriminator_width = 0        # dcgan: D's first width; 0 = model.width
    c.model.dense_hidden = 0               # dcgan: FC layer after z / before the logit
    c.model.leaky_slope = 0.2              # dcgan D and InfoGAN's Q: LeakyReLU's slope
    c.model.hidden = (128, 128, 128)       # mlp: hidden widths of G (and of D by default)
    c.model.discriminator_hidden = ()      # mlp: D's hidden widths; () = model.hidden
    c.model.normalization = "batch"
    c.model.spectral_norm = False

    c.game = ml_collections.ConfigDict()
    c.game.loss_type = "non_saturating"
    c.game.update_rule = "alternating"  # alternating | simultaneous | extragradient | optimistic
    c.game.d_steps = 1           # discriminator updates per step (alternating only)
    # Gradient accumulation: each team update averages its gradients over this many
    # micro-batches of its batch (jgan.core.accumulation; batch norm sees micro-batches).
    c.game.micro_batches = 1
    c.game.unroll_steps = 0      # Unrolled GAN: G's loss through k differentiable D updates
    c.game.pack = 1              # PacGAN: D judges packs of this many samples
    c.game.gradient_penalty_weight = 0.0
    c.game.gradient_penalty_one_sided = False  # gan, conditional: penalize norms > 1 only
    c.game.r1_gamma = 0.0
    c.game.r2_gamma = 0.0        # gan, conditional, acgan (not infogan)
    c.game.ema_decay = ml_collections.config_dict.placeholder(float)
    # EMA decay min(ema_decay, (1 + t) / (10 + t)) at step t, so that sample grids show
    # what G has learned from the first steps (with decay 0.999 alone, a 300-step run's
    # average still holds 74 % of the initial weights: grey noise). No effect without EMA.
    c.game.ema_warmup = True

    # One optimizer per team: different learning rates for the two are TTUR (Heusel et
    # al. 2017). update_rule="optimistic" turns both into their optimistic variants.
    c.optimizer = ml_collections.ConfigDict()
    for team in ("generator", "discriminator"):
        o = ml_collections.ConfigDict()
        o.name = "adam"
        o.learning_rate = 2e-4
        o.schedule = "constant"  # constant | linear_decay (to 0 over the last half)
        o.b1 = 0.5
        o.b2 = 0.999
        o.clip_weights = 0.0
        c.optimizer[team] = o

    # Mixed precision (jgan.precision): the dtype each network computes in. Params,
    # optimizer state, EMA, batch-norm statistics, losses and penalties stay float32.
    c.precision = ml_collections.ConfigDict()
    c.precision.compute_dtype = "float32"  # float32 | bfloat16 | float16, every network
    c.precision.networks = ""              # overrides: "discriminator=float32,generator=bfloat16"
    c.precision.loss_scale = "dynamic"     # float16 only: dynamic | a fixed scale ("1024")

    # Metrics of generated samples (jgan.eval.suite): during training every `eval.every`
    # steps (0 = only at the end), into metrics.jsonl, TensorBoard and eval.json.
    c.eval = default_eval_config()
    # The family's own keys (jgan.families.<family>.config_section).
    return registry.add_section(c)
