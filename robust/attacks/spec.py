"""The attack spec: one attack and its settings as a value, crafted with one call.

Pipelines, adaptive matrices and online adversarial training all name an attack the same way:
``AttackSpec("pgd", 0.3, steps=10).craft(model, x, y)`` calls :func:`robust.attacks.pgd` with
exactly those arguments, so a spec and a direct call give bit-identical inputs. The default
budget per dataset (:data:`EPS`, :func:`default_eps`) lives here too: seed 004 used ε = 0.3 on
MNIST and 0.0313 (≈ 8/255) on CIFAR-10, both in L∞.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass, field
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from robust.attacks._norms import check_eps, check_norm
from robust.attacks.fgsm import fgsm
from robust.attacks.pgd import bim, pgd
from robust.errors import ConfigError

if TYPE_CHECKING:
    from robust.attacks.dgn import Generators

METHODS = ("fgsm", "pgd", "bim", "dgn")
"""What :meth:`AttackSpec.craft` dispatches to: bim is pgd without random start, one run."""

EPS = {"digits": 0.3, "mnist": 0.3, "fashion": 0.3}
"""L∞ budget by dataset (seed 004: 0.3 on MNIST); others get 8/255 (seed 004's CIFAR 0.0313)."""

_ROUTES = ("label", "prediction")  # robust.attacks.dgn.ROUTES, without importing dgn here
_USES = {
    "fgsm": ("method", "eps", "norm", "use_predicted"),
    "bim": ("method", "eps", "norm", "steps", "step_size", "use_predicted"),
    "pgd": (
        "method", "eps", "norm", "steps", "step_size", "restarts", "seed", "random_start",
        "use_predicted",
    ),
    "dgn": ("method", "eps", "norm", "route"),
}  # fmt: skip
"""The settings each method uses (what :meth:`AttackSpec.describe` reports)."""
_QUIET_DEFAULTS = {"random_start": True, "use_predicted": False}
"""Settings described only when they differ from these defaults, so descriptions logged before
they existed read the same."""


def default_eps(dataset: str) -> float:
    """The default L∞ budget on ``dataset``: :data:`EPS`'s entry, else 8/255."""
    return EPS.get(dataset, 8 / 255)


@dataclass(frozen=True)
class AttackSpec:
    """One attack and its settings; :meth:`craft` runs it.

    Attributes:
        method: ``fgsm``, ``pgd``, ``bim`` (pgd from the clean input, one run) or ``dgn``
            (per-class generators, seed 004).
        eps: budget in ``norm``, finite and ≥ 0; for dgn it must be the generators' ε.
        norm: ``inf``, ``2`` or ``1`` (also accepts 2, ``"Linf"``, …; stored canonical); dgn
            clips in L∞ only.
        steps: pgd and bim iterations, ≥ 1.
        step_size: pgd and bim absolute step, > 0; None means 2.5·ε/steps.
        restarts: pgd restarts, ≥ 1, each input keeping its strongest result.
        random_start: pgd starts from a uniform point of the ε-ball (else from x).
        use_predicted: attack the model's predictions instead of y (fgsm, pgd, bim).
        seed: seed of pgd's random starts, ≥ 0.
        generators: dgn only, the trained :class:`robust.attacks.dgn.Generators` (not
            compared, not described).
        route: dgn only: each input goes to the generator of its ``label`` or of the model's
            ``prediction``.

    Raises:
        ConfigError: a setting out of range (checked on construction, one sentence each).

    Example:
        >>> spec = AttackSpec("pgd", 0.3, steps=10, seed=1)
        >>> x_adv = spec.craft(model, x, y)
    """

    method: str
    eps: float
    norm: str = "inf"
    _: KW_ONLY
    steps: int = 20
    step_size: float | None = None
    restarts: int = 1
    random_start: bool = True
    use_predicted: bool = False
    seed: int = 0
    generators: Generators | None = field(default=None, compare=False, repr=False)
    route: str = "label"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(
                f"method must be one of {', '.join(METHODS)}, but got method={self.method!r}"
            )
        if not _is_number(self.eps) or not 0 <= self.eps < math.inf:
            raise ConfigError(
                f"eps must be a finite number of at least 0, but got eps={self.eps!r}"
            )
        object.__setattr__(self, "norm", check_norm(self.norm))
        check_eps(self.eps, self.norm)  # L∞ ≤ 1 here; L2 and L1 once craft sees the inputs
        for name in ("steps", "restarts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ConfigError(
                    f"{name} must be an integer of at least 1, but got {name}={value!r}"
                )
        if self.step_size is not None and (
            not _is_number(self.step_size) or not 0 < self.step_size < math.inf
        ):
            raise ConfigError(
                f"step_size must be a finite number greater than 0 or None (2.5·ε/steps), but "
                f"got step_size={self.step_size!r}"
            )
        for name in ("random_start", "use_predicted"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"{name} must be True or False, but got {name}={getattr(self, name)!r}"
                )
        if isinstance(self.seed, bool) or not isinstance(self.seed, Integral) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, but got seed={self.seed!r}")
        if self.method == "dgn":
            self._check_dgn()
        elif self.generators is not None:
            raise ConfigError(
                f"generators are only used by method='dgn', but got method={self.method!r}"
            )

    def _check_dgn(self) -> None:
        from robust.attacks.dgn import Generators

        if not isinstance(self.generators, Generators):
            raise ConfigError(
                "generators must be robust.attacks.dgn.Generators for method='dgn', but got "
                f"{type(self.generators).__name__}"
            )
        if self.route not in _ROUTES:
            raise ConfigError(
                f"route must be one of {', '.join(_ROUTES)}, but got route={self.route!r}"
            )
        if self.norm != "inf":
            raise ConfigError(
                f"norm must be inf for method='dgn' (L∞ clipping), but got norm={self.norm!r}"
            )
        if self.eps != self.generators.eps:
            raise ConfigError(
                f"eps must be the generators' eps={self.generators.eps} for method='dgn', but "
                f"got eps={self.eps}"
            )
        if self.use_predicted:
            raise ConfigError(
                "use_predicted must be False for method='dgn' (route='prediction' sends inputs "
                "to their predicted class's generator), but got use_predicted=True"
            )

    def craft(
        self, model: nn.Module, x: Tensor, y: Tensor | None, *, batch_size: int | None = None
    ) -> Tensor:
        """Adversarial versions of ``x`` against ``model``: the method's function, called with
        this spec's settings.

        Args:
            model: classifier returning logits; run in eval mode, its mode restored.
            x: (N, C, H, W) float32 in [0, 1]; never modified.
            y: (N,) int labels; may be None with ``use_predicted`` (or dgn's prediction route).
            batch_size: inputs per pass; None picks the attack's automatic size (1024 for dgn).

        Returns:
            (N, C, H, W) tensor like ``x``: within ``eps`` of ``x`` in ``norm`` and in [0, 1].

        Raises:
            ConfigError: ``eps`` exceeds the largest ``norm`` distance between two inputs of
                ``x``'s shape in [0, 1] (√d in L2, d in L1).
        """
        check_eps(self.eps, self.norm, x[0].numel() if len(x) else None)
        if self.method == "fgsm":
            return fgsm(
                model,
                x,
                y,
                self.eps,
                self.norm,
                use_predicted=self.use_predicted,
                batch_size=batch_size,
            )
        if self.method == "bim":
            return bim(
                model,
                x,
                y,
                self.eps,
                self.steps,
                self.step_size,
                self.norm,
                use_predicted=self.use_predicted,
                batch_size=batch_size,
            )
        if self.method == "pgd":
            return pgd(
                model,
                x,
                y,
                self.eps,
                self.steps,
                self.step_size,
                self.norm,
                random_start=self.random_start,
                restarts=self.restarts,
                seed=self.seed,
                use_predicted=self.use_predicted,
                batch_size=batch_size,
            )
        return self.generators.generate(
            x, y, model=model, route=self.route, batch_size=batch_size or 1024
        )

    def describe(self) -> dict[str, Any]:
        """The settings that matter for ``method`` (pgd's and bim's step size resolved), e.g.
        for a run's labels; ``random_start`` and ``use_predicted`` only when not at their
        defaults, the generators never."""
        out = {
            key: getattr(self, key)
            for key in _USES[self.method]
            if key not in _QUIET_DEFAULTS or getattr(self, key) != _QUIET_DEFAULTS[key]
        }
        if "step_size" in out and self.step_size is None:
            out["step_size"] = 2.5 * self.eps / self.steps
        return out


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)
