"""The names of the networks the GAN families share (a leaf module: everything in
`jgan.families` imports it, it imports nothing)."""

GENERATOR = "generator"
DISCRIMINATOR = "discriminator"
Q_HEAD = "q_head"   # InfoGAN's Q head on the discriminator's features
