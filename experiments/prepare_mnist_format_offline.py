"""Prepares an MNIST-format TFDS dataset (mnist, fashion_mnist) from local idx files.

For machines without network access to the datasets' hosts. TFDS's builder is used
as is (same features, splits, shuffling and array_record files as a normal
`download_and_prepare`); only its download step is pointed at local, uncompressed idx
files. Preparation needs TensorFlow (TFDS encodes the images with it), so run this in a
throw-away environment: jgan never needs TensorFlow at training time.

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu tensorflow-datasets==4.9.10 array_record importlib_resources
    # genuine Fashion-MNIST from Debian's package (its .gz files are the originals with
    # the gzip header fields stripped; the decompressed bytes are Zalando's):
    apt-get download dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb deb
    mkdir idx && for f in deb/usr/share/datasets/fashion-mnist/*.gz; do
        zcat $f > idx/$(basename $f .gz); done
    /tmp/tfvenv/bin/python experiments/prepare_mnist_format_offline.py \
        --name=fashion_mnist --idx_dir=idx --data_dir=workdirs/tfds_fixed

Then pass `--config.data.data_dir=workdirs/tfds_fixed`. Note: the copy in
`../shared/data/tfds/fashion_mnist` on the project's machines holds MNIST's records
(reported upstream); a run on it measures MNIST.
"""
import urllib.parse
from pathlib import Path

from absl import flags

from jgan import cli
from jgan.errors import UsageError

_NAME = flags.DEFINE_enum("name", "fashion_mnist", ["mnist", "fashion_mnist"], "TFDS dataset.")
_IDX_DIR = flags.DEFINE_string("idx_dir", None, "Folder holding the four uncompressed idx files.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data dir to write.")
flags.mark_flags_as_required(["idx_dir", "data_dir"])

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def main(argv) -> None:
    if len(argv) > 1:
        raise UsageError(f"Unexpected arguments: {argv[1:]}")
    idx_dir = Path(_IDX_DIR.value)
    missing = [f for f in IDX_FILES if not (idx_dir / f).is_file()]
    if missing:
        raise SystemExit(f"--idx_dir={idx_dir}: missing {missing} (uncompressed idx files).")

    import tensorflow_datasets as tfds

    def local_files(self, urls: dict) -> dict:
        # The builder asks for {key: URL of NAME.gz}; hand it the uncompressed local NAME.
        names = {k: urllib.parse.urlparse(u).path.rsplit("/", 1)[-1].removesuffix(".gz")
                 for k, u in urls.items()}
        return {k: str(idx_dir / n) for k, n in names.items()}

    tfds.download.DownloadManager.download_and_extract = local_files
    builder = tfds.builder(_NAME.value, data_dir=_DATA_DIR.value, file_format="array_record")
    builder.download_and_prepare()
    print(f"{_NAME.value} prepared in {builder.data_dir}: {builder.info.splits}")


if __name__ == "__main__":
    cli.run(main)
