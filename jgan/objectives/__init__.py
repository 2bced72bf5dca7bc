"""What the teams minimize.

  losses            adversarial losses from logits: minimax, non-saturating, Wasserstein,
                    hinge, least squares (keyword-only, `loss_type` dispatch)
  penalties         gradient penalties: WGAN-GP (two- and one-sided), R1, R2
  auxiliary_losses  ACGAN's class loss, InfoGAN's information loss
  constraints       weight clipping, as an optax transformation
  bidirectional     BiGAN / ALI and BigBiGAN: losses of a discriminator on (x, z) pairs
  variational       VAE bounds on log p(x): Gaussian KL, reparameterization, Bernoulli and
                    Gaussian likelihoods, the ELBO, the chunked importance-weighted bound
"""
