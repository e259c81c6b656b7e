"""Named initializations of a trained family (a registry per family)."""

from __future__ import annotations

from collections.abc import Callable


class InitRegistry:
    """The named inits of one trained family: ``fn(data, M, generator) -> parameters`` with a
    default variance. Each family owns one, so a wrong name is refused with that family's list."""

    def __init__(self, family: str):
        self.family = family
        self._inits: dict[str, tuple[Callable, float]] = {}

    def register(self, name: str, variance: float):
        """Decorator: register ``fn`` under ``name`` with its default variance."""

        def wrap(fn):
            self._inits[name] = (fn, variance)
            return fn

        return wrap

    def names(self) -> list[str]:
        """The registered init names, in registration order."""
        return list(self._inits)

    def check(self, name: str) -> None:
        """Raise ValueError, listing the known inits, unless ``name`` is one."""
        if name not in self._inits:
            raise ValueError(f"init {name!r} is not available for {self.family}; known inits: "
                             f"{', '.join(self._inits)}")

    def resolve(self, name: str, variance: float | None) -> tuple[Callable, float]:
        """The init function and the variance to start from (its default unless given), checked."""
        self.check(name)
        fn, default = self._inits[name]
        v = default if variance is None else variance
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and v > 0):
            raise ValueError(f"init variance must be a positive number, got {v!r}")
        return fn, float(v)
