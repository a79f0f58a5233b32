"""NumPyro generative models with Equinox backbones (depends on `hetprobit`)."""
