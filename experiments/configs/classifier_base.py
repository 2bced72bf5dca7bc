"""Shared settings of the evaluation classifiers (`task = "classifier"`).

Every key the classifier trainer reads is declared here, so `--config.x.y=v`
overrides of unknown keys or of the wrong type fail while flags are parsed.
"""
import ml_collections


def classifier_config(*, dataset: str, num_steps: int,
                      runlocal: bool = False) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.task = "classifier"
    c.seed = 0
    c.num_steps = num_steps      # 469 steps = one epoch of 60k images
    c.batch_size = 128           # global over devices
    c.eval_batch_size = 1000     # evaluation batches; the last one is padded, not dropped
    c.log_every = 100
    c.eval_every = 500           # 0: only at the end
    c.checkpoint_every = 500
    c.progress_bar = True

    c.data = ml_collections.ConfigDict()
    c.data.kind = "tfds"
    c.data.name = dataset
    c.data.split = "train"
    c.data.eval_split = "test"
    c.data.data_dir = ""         # TFDS data dir ("" = TFDS_DATA_DIR or TFDS's default)
    c.data.resolution = 28
    c.data.channels = 1
    c.data.resize = "bicubic"    # or "pad": centred on a larger canvas (as the GAN's data)
    c.data.target = "label"      # attribute_digits: label | colour | background | stroke
    c.data.worker_count = 0
    c.data.on_device = False     # the split in device memory, batches drawn there

    c.model = ml_collections.ConfigDict()
    c.model.num_classes = 10
    c.model.width = 32
    c.model.features = 256
    c.model.dropout_rate = 0.25
    c.model.batch_norm = True

    c.augment = ml_collections.ConfigDict()
    c.augment.max_shift = 2      # pixels, each direction
    c.augment.horizontal_flip = False

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.learning_rate = 3e-3
    c.optimizer.schedule = "cosine"  # cosine | constant, after a linear warmup
    c.optimizer.warmup_steps = 100
    c.optimizer.weight_decay = 1e-4
    c.optimizer.b1 = 0.9
    c.optimizer.b2 = 0.999
    if runlocal:
        apply_runlocal(c)
    return c


def apply_runlocal(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The small variant tests run end to end: a tiny network, a few steps, 64 test images."""
    c.model.width = 4
    c.model.features = 16
    c.batch_size = 16
    c.eval_batch_size = 32
    c.num_steps = 4
    c.log_every = 2
    c.eval_every = 2
    c.checkpoint_every = 2
    c.optimizer.warmup_steps = 1
    c.data.eval_split = "test[:72]"
    return c
