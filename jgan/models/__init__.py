"""Networks: MLPs for 2-D data, DCGAN for 28/32/64-px images, the evaluation classifier."""
from jgan.models.classifier import DigitClassifier
from jgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jgan.models.layers import UpsampleConv, depth_to_space, transposed_conv_to_subpixel_kernel
from jgan.models.mlp import MLPDiscriminator, MLPGenerator

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "DigitClassifier", "MLPDiscriminator",
           "MLPGenerator", "UpsampleConv", "depth_to_space", "transposed_conv_to_subpixel_kernel"]
