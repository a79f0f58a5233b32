"""The studies behind `hetprobit` (one module per study; the command and notebooks share them).

- `compare`: every method on digits with injected label noise (`run_compare`, `write_compare`).
- `bias`: relaxation bias and gradient variance of the tempered estimator (`run_bias`,
  `write_bias`).
- `choice`: logit, iid / full probit and tempered fits of a discrete-choice data set
  (`run_choice`, `write_choice`); its table and files are in `choice_outputs`.
- `methods`: the compared methods (`METHODS`) and the noisy-digits task (`noisy_digits`).
- `outputs`: results.json, tables and figures.

Each study module has the command-line shape `NAME`, `HELP`, `add_arguments(parser)`,
`check_arguments(args, parser)`, `run(args)`, `write(results, out)`; `STUDIES` lists them in
the order of `hetprobit`'s subcommands.
"""

from . import bias, choice, compare

# the subcommands of `hetprobit`, the first is the default
STUDIES = (compare, bias, choice)

__all__ = ["STUDIES", "bias", "choice", "compare"]
