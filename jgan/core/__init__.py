"""The game and its update rules.

  game           Game (static: teams of networks, losses, optimizers) and GameState
                 (pytree: each team's variables and optimizer state, EMA weights, step, key)
  steps          make_step and the update rules: alternating, simultaneous, optimistic
  step_parts     the pieces every rule is built from (a team's gradients, its update)
  extragradient  extragradient updates (Korpelevich 1976; Gidel et al. 2019)
  unrolled       Unrolled GAN's look-ahead loss (Metz et al. 2017)
  stages         runs in stages: networks carried by name from one game to the next
"""
