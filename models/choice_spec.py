r"""Utility specification of a discrete-choice model: which coefficients enter which utility.

Systematic utility of alternative j for chooser n (Train 2009, *Discrete Choice Methods with
Simulation*, ch. 2; Croissant 2020, *Estimation of random utility models in R: the mlogit
package*, J. Stat. Softw. 95(11)):

    V_nj = asc_j                              (asc=True; asc_base = 0)
         + sum_{a in generic}       beta_a    x_nja
         + sum_{a, k in alt_spec}   beta_a_k  x_nja 1[j = k]
         + sum_{q, k in individual} gamma_q_k z_nq  1[j = k]      (k != base)

Coefficient names: `asc_<alt>`, `<attr>`, `<attr>_<alt>`, `<var>_<alt>`. Only utility
differences are identified, so the base alternative has no constant and no chooser-variable
coefficient. `design_matrix` builds X `(N, J, P)` with V = X @ theta[:P] as a pure JAX function
of the attribute arrays (so elasticities are derivatives through it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .choice_data import ChoiceData

__all__ = ["ChoiceSpec", "DesignColumn", "DesignLayout", "design_layout", "design_matrix"]


def _tuple_of_names(arg: str, value) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError(f"`{arg}` must be a tuple of names, not the string {value!r}")
    return tuple(str(v) for v in value)


def _frozen_map(arg: str, value) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, Mapping):
        raise TypeError(f"`{arg}` must be a dict name -> (alternatives...), got {value!r}")
    return tuple((str(k), _tuple_of_names(f"{arg}[{k!r}]", v)) for k, v in value.items())


@dataclass(frozen=True)
class ChoiceSpec:
    """Which coefficients enter which utility (see the module docstring for the equation).

    Args:
        base: the reference alternative (no constant, no chooser-variable coefficient); its
            noise scale is also the one fixed by the normalisation. Default: the first.
        generic: attributes with one coefficient shared by all alternatives.
        alternative_specific: attribute -> alternatives with their own coefficient
            `<attr>_<alt>` (the attribute is dropped from the others' utilities).
        individual: chooser variable -> non-base alternatives whose utility it enters,
            coefficient `<var>_<alt>`.
        asc: alternative-specific constants `asc_<alt>` for every non-base alternative.
    """

    base: str | None = None
    generic: tuple[str, ...] = ()
    alternative_specific: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    individual: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    asc: bool = True

    def __post_init__(self):
        object.__setattr__(self, "generic", _tuple_of_names("generic", self.generic))
        object.__setattr__(
            self,
            "alternative_specific",
            _frozen_map("alternative_specific", self.alternative_specific),
        )
        object.__setattr__(self, "individual", _frozen_map("individual", self.individual))

    def base_index(self, alternatives: tuple[str, ...]) -> int:
        """Index of the base alternative (raises if it is not among `alternatives`)."""
        if self.base is None:
            return 0
        if self.base not in alternatives:
            raise ValueError(f"`base` {self.base!r} is not among the alternatives {alternatives}")
        return alternatives.index(self.base)


class DesignColumn(NamedTuple):
    """One coefficient: source ("asc" | "attr" | "ind"), source index, alternatives mask."""

    name: str
    source: str
    index: int
    mask: tuple[bool, ...]


class DesignLayout(NamedTuple):
    """Static (hashable) description of X: the columns, J, base index and alternative names."""

    columns: tuple[DesignColumn, ...]
    alternatives: tuple[str, ...]
    base: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def design_layout(spec: ChoiceSpec, data: ChoiceData) -> DesignLayout:
    """Check `spec` against `data` and lay out the coefficient columns.

    Raises:
        ValueError: an unknown attribute, chooser variable or alternative name; the base among
            a chooser variable's alternatives; an attribute both generic and
            alternative-specific; a specification without any coefficient.
    """
    alts = data.alternatives
    J = len(alts)
    b = spec.base_index(alts)

    def mask(names, arg):
        unknown = [a for a in names if a not in alts]
        if unknown:
            raise ValueError(f"`{arg}`: unknown alternatives {unknown}; have {alts}")
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"`{arg}` must list distinct alternatives, got {names}")
        return tuple(a in names for a in alts)

    def attr_index(name, arg):
        if name not in data.attribute_names:
            raise ValueError(f"`{arg}`: unknown attribute {name!r}; have {data.attribute_names}")
        return data.attribute_names.index(name)

    cols = []
    if spec.asc:
        for j, a in enumerate(alts):
            if j != b:
                cols.append(DesignColumn(f"asc_{a}", "asc", j, tuple(k == j for k in range(J))))
    for name in spec.generic:
        cols.append(DesignColumn(name, "attr", attr_index(name, "generic"), (True,) * J))
    for name, alt_names in spec.alternative_specific:
        if name in spec.generic:
            raise ValueError(
                f"attribute {name!r} is both generic and alternative-specific; choose one"
            )
        i = attr_index(name, "alternative_specific")
        m = mask(alt_names, f"alternative_specific[{name!r}]")
        for j, a in enumerate(alts):
            if m[j]:
                cols.append(DesignColumn(f"{name}_{a}", "attr", i, tuple(k == j for k in range(J))))
    for name, alt_names in spec.individual:
        if name not in data.individual_names:
            raise ValueError(
                f"`individual`: unknown chooser variable {name!r}; have {data.individual_names}"
            )
        m = mask(alt_names, f"individual[{name!r}]")
        if m[b]:
            raise ValueError(
                f"`individual[{name!r}]` includes the base alternative {alts[b]!r}: its "
                "coefficient is not identified (only utility differences are)"
            )
        q = data.individual_names.index(name)
        for j, a in enumerate(alts):
            if m[j]:
                cols.append(DesignColumn(f"{name}_{a}", "ind", q, tuple(k == j for k in range(J))))
    if not cols:
        raise ValueError("the specification has no coefficient (asc=False and no variables)")
    names = [c.name for c in cols]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"coefficient names collide: {dup}; rename the variables")
    return DesignLayout(tuple(cols), alts, b)


def design_matrix(
    layout: DesignLayout,
    attributes: Float[Array, "N J A"],
    individual: Float[Array, "N Q"],
) -> Float[Array, "N J P"]:
    """X `(N, J, P)` with V_nj = sum_p X_njp theta_p (pure JAX; differentiable in inputs)."""
    N, J = attributes.shape[:2]
    cols = []
    for c in layout.columns:
        m = jnp.asarray(np.asarray(c.mask, float), attributes.dtype)
        if c.source == "asc":
            cols.append(jnp.broadcast_to(m[None, :], (N, J)))
        elif c.source == "attr":
            cols.append(attributes[:, :, c.index] * m[None, :])
        else:
            cols.append(individual[:, c.index, None] * m[None, :])
    return jnp.stack(cols, axis=-1)
