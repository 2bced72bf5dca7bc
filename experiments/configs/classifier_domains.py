"""Classifiers of the derived translation domains: they score translated images.

    --config=experiments/configs/classifier_domains.py:mnist2textured,b
        the digit of textured MNIST (28 px RGB): CycleGAN's MNIST -> textured outputs
    --config=experiments/configs/classifier_domains.py:mnist2textured,a
        the digit of MNIST as the task reads it (28 px, three equal channels): the
        textured -> MNIST outputs
    --config=experiments/configs/classifier_domains.py:attributes,TARGET
        StarGAN's digits (32 px RGB, zero-padded as `stargan.py`), TARGET one of
        label (the digit), colour, background, stroke
    append ,runlocal for the small variant that tests run

Each domain is made as the GAN run makes it (`jgan.data.domain_pairs`, `AttributeDigits`)
from the same seed, on the same split: the classifier trains on the domain's training
half and is tested on its test split. These classifiers never see a translation.
"""
from experiments.configs.classifier_base import classifier_config
from jgan.data.classification_sources import TARGET_CLASSES

TASKS = {"mnist2textured": (28, 3), "mnist2digits8": (28, 1)}


def get_config(arg: str = "mnist2textured,b"):
    parts = [p for p in arg.split(",") if p]
    runlocal = "runlocal" in parts
    parts = [p for p in parts if p != "runlocal"]
    usage = (f"classifier_domains.py takes '{{{'|'.join(TASKS)}}},{{a|b}}[,runlocal]' or "
             f"'attributes,{{{'|'.join(TARGET_CLASSES)}}}[,runlocal]', got {arg!r}.")
    if len(parts) != 2:
        raise ValueError(usage)
    task, which = parts
    c = classifier_config(dataset="mnist", num_steps=2000, runlocal=runlocal)
    if task == "attributes" and which in TARGET_CLASSES:
        c.data.kind = "attribute_digits"
        c.data.target = which
        c.data.resolution, c.data.channels, c.data.resize = 32, 3, "pad"
        c.model.num_classes = TARGET_CLASSES[which]
    elif task in TASKS and which in ("a", "b"):
        c.data.kind = "translation_domain"
        c.data.name = f"{task}:{which}"
        c.data.resolution, c.data.channels = TASKS[task]
    else:
        raise ValueError(usage)
    return c
