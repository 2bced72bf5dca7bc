"""Scripts of the training-dynamics lab (docs/dynamics.md)."""
