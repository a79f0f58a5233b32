r"""Registry of noise structures: one public name per structure, and how to build it.

Each structure file of `hetprobit.noise` registers one `NoiseFamily`: the structure's
class, the raw outputs a network produces for it (`RawOutput`: name, shape as a function
of K classes, rank R and representation width D, and whether the array is a function of
the example or shared by all examples), and a `build` function from those raw outputs to
the `NoiseStructure`. Consumers (the head in `models/`, the command line, the choice
models) read the registry instead of listing structures themselves:

    family = get_noise_family("low_rank")
    shapes = family.output_shapes(num_classes=K, rank=R, in_features=D)
    noise = family.build(raw, num_classes=K, min_scale=1e-3)

Kinds of raw output (`RawOutput.kind`):

- "per_example": a function of the example, shape `(*batch, *shape)` (a network head
  computes it, e.g. with a linear layer of r);
- "shared": one array for all examples (a free parameter, e.g. the parameter-efficient W);
- "mean_weight": the `(K, D)` weight of the mean layer mu = W r + b (HET-XL's projection),
  shared by all examples and owned by the mean layer.

`RawOutput.init` says how a network initialises the array so an untrained structure is
near the homoscedastic one: "scale" (scale outputs whose positive transform starts at the
noise initial scale), "small" (weights and bias of the noise initial scale), "default"
(the linear layer's default initialisation), "none" (not owned by the noise).

Names. The canonical names are the structures' names in snake case ("homoscedastic",
"diagonal", "low_rank", "parameter_efficient", "hetxl", "full"). `NOISE_ALIASES` maps the
two older spellings of the head's `covariance=` strings ("lowrank", "efficient") to them;
it is the only alias table, kept so scripts and the command line written against the
older names keep working, and `get_noise_family` always returns the canonical family.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence

from ..validation import check_positive_int
from .base import NoiseStructure

__all__ = [
    "RawOutput",
    "NoiseFamily",
    "NOISE_STRUCTURES",
    "NOISE_ALIASES",
    "OUTPUT_KINDS",
    "OUTPUT_INITS",
    "get_noise_family",
    "register_noise_family",
]

OUTPUT_KINDS = ("per_example", "shared", "mean_weight")
OUTPUT_INITS = ("scale", "small", "default", "none")
RANK_BOUNDS = {"num_classes": "the number of classes K", "in_features": "in_features D"}

NOISE_ALIASES: Mapping[str, str] = {"lowrank": "low_rank", "efficient": "parameter_efficient"}

_REGISTRY: dict[str, NoiseFamily] = {}


@dataclasses.dataclass(frozen=True)
class RawOutput:
    """One raw array a structure is built from.

    Args:
        name: key of the array in `build`'s `raw` mapping.
        shape: `(K, R, D) -> shape` of the array for ONE example (per-example outputs) or
            of the whole array (shared outputs).
        kind: one of `OUTPUT_KINDS` (see module docstring).
        init: one of `OUTPUT_INITS` (see module docstring).
    """

    name: str
    shape: Callable[[int, int, int], tuple[int, ...]]
    kind: str = "per_example"
    init: str = "small"

    def __post_init__(self):
        if self.kind not in OUTPUT_KINDS:
            raise ValueError(f"`kind` must be one of {OUTPUT_KINDS}, got {self.kind!r}")
        if self.init not in OUTPUT_INITS:
            raise ValueError(f"`init` must be one of {OUTPUT_INITS}, got {self.init!r}")


@dataclasses.dataclass(frozen=True)
class NoiseFamily:
    """A registered noise structure: its name, class, raw outputs and builder.

    Args:
        name: the public name (snake case).
        structure: the `NoiseStructure` subclass `build` returns.
        outputs: the raw outputs `build` reads.
        build: `build(raw, *, num_classes, min_scale) -> NoiseStructure`, where `raw` maps
            each output's name to its array (per-example outputs with leading batch axes).
        rank_bound: None for a structure without a low-rank factor (an explicit rank is an
            error), otherwise what bounds the rank R from above: "num_classes" (1 <= R < K)
            or "in_features" (1 <= R < D).
        description: one line for listings (e.g. the command line's help).
    """

    name: str
    structure: type[NoiseStructure]
    outputs: tuple[RawOutput, ...]
    build: Callable[..., NoiseStructure]
    rank_bound: str | None = None
    description: str = ""

    def __post_init__(self):
        if self.rank_bound is not None and self.rank_bound not in RANK_BOUNDS:
            raise ValueError(
                f"`rank_bound` must be None or one of {tuple(RANK_BOUNDS)}, got {self.rank_bound!r}"
            )
        names = [o.name for o in self.outputs]
        if len(set(names)) != len(names):
            raise ValueError(f"`outputs` of {self.name!r} repeat a name: {names}")

    @property
    def has_factor(self) -> bool:
        """Whether the structure has a low-rank factor (and so a `rank`)."""
        return self.rank_bound is not None

    def resolve_rank(self, rank: int | None, *, num_classes: int, in_features: int) -> int:
        """The rank R to use: the default min(15, bound - 1) when None, else `rank` checked.

        Raises:
            ValueError: an explicit `rank` for a structure without a factor; a rank outside
                1 <= R < bound (naming the bound: K or in_features D).
            TypeError: a non-integer `rank`.
        """
        if self.rank_bound is None:
            if rank is not None:
                raise ValueError(
                    f"`rank` does not apply to covariance={self.name!r} (it has no low-rank "
                    f"factor): leave rank=None, got rank={rank!r}"
                )
            return 0
        bound = num_classes if self.rank_bound == "num_classes" else in_features
        if rank is None:
            rank = min(15, bound - 1)
            if rank < 1:
                raise ValueError(
                    f"covariance={self.name!r} needs {RANK_BOUNDS[self.rank_bound]} >= 2 "
                    f"for a rank >= 1, got {bound}"
                )
            return rank
        check_positive_int("rank", rank)
        if rank >= bound:
            raise ValueError(
                f"`rank` must satisfy 1 <= rank < {RANK_BOUNDS[self.rank_bound]}={bound} for "
                f"covariance={self.name!r}, got rank={rank}"
            )
        return int(rank)

    def output_shapes(
        self, *, num_classes: int, rank: int, in_features: int
    ) -> dict[str, tuple[int, ...]]:
        """Shape of every raw output (per example for "per_example" ones), by name."""
        return {
            o.name: tuple(int(n) for n in o.shape(num_classes, rank, in_features))
            for o in self.outputs
        }


class _Names(Sequence):
    """Live, read-only view of the registered names (in registration order)."""

    def __getitem__(self, i):
        return tuple(_REGISTRY)[i]

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_REGISTRY))

    def __contains__(self, name) -> bool:
        return name in _REGISTRY

    def __eq__(self, other) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, Sequence) else NotImplemented

    def __hash__(self):
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


NOISE_STRUCTURES: Sequence[str] = _Names()


def register_noise_family(family: NoiseFamily) -> NoiseFamily:
    """Register `family` under `family.name`; returns it.

    Raises:
        TypeError: `family` is not a `NoiseFamily`, or its structure not a `NoiseStructure`.
        ValueError: the name is taken (or is an alias).
    """
    if not isinstance(family, NoiseFamily):
        raise TypeError(f"`family` must be a NoiseFamily, got {type(family).__name__}")
    if not (isinstance(family.structure, type) and issubclass(family.structure, NoiseStructure)):
        raise TypeError(f"`structure` must be a NoiseStructure subclass, got {family.structure!r}")
    if family.name in _REGISTRY or family.name in NOISE_ALIASES:
        raise ValueError(f"a noise structure named {family.name!r} is already registered")
    _REGISTRY[family.name] = family
    return family


def get_noise_family(name: str) -> NoiseFamily:
    """The registered family of `name` (canonical name or an entry of `NOISE_ALIASES`).

    Raises:
        ValueError: an unknown name, listing the registered ones.
    """
    family = _REGISTRY.get(NOISE_ALIASES.get(name, name)) if isinstance(name, str) else None
    if family is None:
        raise ValueError(
            f"`covariance` must be one of {tuple(_REGISTRY)} (aliases: {dict(NOISE_ALIASES)}), "
            f"got {name!r}"
        )
    return family
