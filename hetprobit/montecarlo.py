r"""`MonteCarlo`: the one Monte Carlo setting of the tempered likelihoods.

The tempered estimators of `hetprobit.likelihood` average over S standard-normal draws;
how those draws are made is described by four values that travel together from the head
(`models.HeteroscedasticHead`) through the distribution (`HeteroscedasticChoice`) to the
likelihood functions:

| field | meaning |
|---|---|
| `num_samples` | S, draws per estimate (even for `sampler="antithetic"`) |
| `sampler` | "mc", "antithetic" or "qmc" (`hetprobit.sampling.SAMPLERS`) |
| `chunk_size` | draws per streamed chunk (None: `default_chunk_size`) |
| `share_draws` | one set of draws for every example of the batch |

The value is immutable and hashable (a frozen dataclass), so it can be a static field of an
Equinox module or an auxiliary field of a NumPyro distribution, and it is validated once,
where it is built. The likelihood functions keep their explicit keyword arguments:
`tempered_softmax_log_probs(mu, noise, key=key, tau=tau, **mc.kwargs())`.

Antithetic pairs (z, -z) and randomised lattices are the variance-reduction schemes of
Owen, "Monte Carlo theory, methods and examples" (2013), chapters 8 and 17.
"""

from __future__ import annotations

import dataclasses
import numbers

from .sampling import SAMPLERS
from .validation import check_positive_int

__all__ = ["MonteCarlo"]


@dataclasses.dataclass(frozen=True)
class MonteCarlo:
    """Monte Carlo configuration of a tempered likelihood estimate (see module docstring).

    Args:
        num_samples: S >= 1 (even for `sampler="antithetic"`).
        sampler: one of `hetprobit.SAMPLERS`.
        chunk_size: draws per streamed chunk, >= 1, or None for the default.
        share_draws: use the same draws for every example of a batch.

    Raises:
        TypeError: `num_samples` / `chunk_size` not integers, `share_draws` not a bool.
        ValueError: non-positive `num_samples` / `chunk_size`, an unknown `sampler`, or an
            odd `num_samples` with `sampler="antithetic"`.
    """

    num_samples: int = 256
    sampler: str = "mc"
    chunk_size: int | None = None
    share_draws: bool = False

    def __post_init__(self):
        check_positive_int("num_samples", self.num_samples)
        if self.sampler not in SAMPLERS:
            raise ValueError(f"`sampler` must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.sampler == "antithetic" and self.num_samples % 2:
            raise ValueError(
                f"`num_samples` must be even for sampler='antithetic' (pairs z, -z), "
                f"got num_samples={self.num_samples}"
            )
        if self.chunk_size is not None:
            check_positive_int("chunk_size", self.chunk_size)
        if not isinstance(self.share_draws, bool | numbers.Integral) or self.share_draws not in (
            0,
            1,
        ):
            raise TypeError(f"`share_draws` must be a bool, got {self.share_draws!r}")
        # normalise NumPy integers / 0-1 ints so equal settings hash equally
        object.__setattr__(self, "num_samples", int(self.num_samples))
        if self.chunk_size is not None:
            object.__setattr__(self, "chunk_size", int(self.chunk_size))
        object.__setattr__(self, "share_draws", bool(self.share_draws))

    def replace(self, **changes) -> MonteCarlo:
        """A copy with some fields changed (validated again); `None` values are ignored.

        Raises:
            TypeError: an unknown field name.
        """
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"MonteCarlo has no field(s) {sorted(unknown)}")
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes) if changes else self

    def kwargs(self) -> dict:
        """The keyword arguments of the `hetprobit.likelihood` functions."""
        return dict(
            num_samples=self.num_samples,
            sampler=self.sampler,
            chunk_size=self.chunk_size,
            share_draws=self.share_draws,
        )
