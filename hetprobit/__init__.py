"""hetprobit: heteroscedastic multinomial probit classification in JAX and NumPyro."""

__version__ = "0.1.0"
