"""Networks: MLPs for 2-D data, DCGAN for 28/32/64-px images, SNGAN ResNets with class
conditioning, label-conditioning wrappers, the evaluation classifier, encoders and
decoders of autoencoders and VAEs."""
from jgan.models.autoencoder import (ConvDecoder, ConvEncoder, LearnedScale, MLPDecoder,
                                     MLPEncoder)
from jgan.models.classifier import DigitClassifier
from jgan.models.conditional_layers import ConditionalBatchNorm, ProjectionHead
from jgan.models.conditioning import (
    AuxiliaryClassifierDiscriminator,
    LabelConditionedDiscriminator,
    LabelConditionedGenerator,
)
from jgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jgan.models.layers import UpsampleConv, depth_to_space, transposed_conv_to_subpixel_kernel
from jgan.models.mlp import MLPDiscriminator, MLPGenerator
from jgan.models.resnet import ResNetDiscriminator, ResNetGenerator

__all__ = ["AuxiliaryClassifierDiscriminator", "ConditionalBatchNorm", "ConvDecoder",
           "ConvEncoder", "DCGANDiscriminator", "DCGANGenerator", "DigitClassifier",
           "LabelConditionedDiscriminator", "LabelConditionedGenerator", "LearnedScale",
           "MLPDecoder",
           "MLPDiscriminator", "MLPEncoder", "MLPGenerator", "ProjectionHead",
           "ResNetDiscriminator", "ResNetGenerator", "UpsampleConv", "depth_to_space",
           "transposed_conv_to_subpixel_kernel"]
