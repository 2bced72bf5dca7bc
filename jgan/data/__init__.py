"""Data: 2-D Gaussian mixtures, TFDS datasets and image folders."""
from jgan.data.images import DataError, ImageFolderSource, make_image_loader, tfds_source
from jgan.data.mixtures import Mixture, get_mixture, grid, ring

__all__ = ["DataError", "ImageFolderSource", "Mixture", "get_mixture", "grid",
           "make_image_loader", "ring", "tfds_source"]
