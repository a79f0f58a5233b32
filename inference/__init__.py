"""SVI fitting, ensembles, predictive summaries (depends on `hetprobit` and `models`)."""
