"""Data: 2-D Gaussian mixtures, TFDS datasets, Stacked MNIST and image folders."""
from jgan.data.images import DataError, ImageFolderSource, make_image_loader, tfds_source
from jgan.data.permutation import index_shuffle
from jgan.data.mixtures import Mixture, get_mixture, grid, ring
from jgan.data.stacked_mnist import StackedMNISTSource, stacked_mnist_source

__all__ = ["DataError", "ImageFolderSource", "Mixture", "StackedMNISTSource", "get_mixture",
           "grid", "index_shuffle", "make_image_loader", "ring", "stacked_mnist_source",
           "tfds_source"]
