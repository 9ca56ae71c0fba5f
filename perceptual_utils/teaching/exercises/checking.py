"""The checkers' shared machinery: the result, running a student's function against the reference,
recognising a typical mistake, and the registry of exercises and their solutions.

Each topic module (:mod:`.losses`, :mod:`.networks`, :mod:`.training_step`, :mod:`.super_resolution`,
:mod:`.multistyle`) writes its reference, test cases and typical-mistake table, builds its checker on
:func:`run_check` and hands it to :func:`register` under the exercise's number in the workbook.
"""
from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

NOT_ATTEMPTED = "not attempted, using the reference"


# ----------------------------------------------------------------------------- the result

@dataclass
class CheckResult:
    """What a checker found.

    Attributes:
        name: the exercise.
        attempted: ``False`` when the function was ``None``, raised ``NotImplementedError`` or returned ``None``.
        passed: the function agrees with the reference on every test input.
        mistake: key of the typical mistake recognised (``None`` if passed or not recognised).
        hint: what to fix (empty when passed).
        details: what was compared (for the report).
        fn: the function to use from now on (the student's if it passed, else the reference).

    Calling the result calls :attr:`fn`, so ``gram = check_gram_matrix(my_gram)`` can be used as
    the Gram matrix in later cells.
    """

    name: str
    attempted: bool
    passed: bool
    fn: Callable
    mistake: str | None = None
    hint: str = ""
    details: list[str] = field(default_factory=list)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    @property
    def status(self) -> str:
        if not self.attempted:
            return "not attempted"
        return "passed" if self.passed else "not yet"

    def report(self) -> str:
        if not self.attempted:
            return f"[{self.name}] {NOT_ATTEMPTED} (write your function and run the cell again)."
        if self.passed:
            return f"[{self.name}] correct: {'; '.join(self.details)}. Your function is used from here on."
        lines = [f"[{self.name}] not yet: {self.hint}"]
        lines += [f"    {d}" for d in self.details]
        lines.append("    The reference is used from here on, so the notebook goes on; fix your function and "
                     f"run the cell again (stuck? exercises.solution({self.name!r})).")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"CheckResult({self.name!r}, {self.status}{', ' + self.mistake if self.mistake else ''})"


class NotAttempted(Exception):
    """The student's function is blank: ``None``, raises ``NotImplementedError`` or returns ``None``."""


class _Mismatch(Exception):
    """The student's function failed on one input: ``key`` names the mistake if recognised."""

    def __init__(self, hint: str, key: str | None = None, details: Sequence[str] = ()):
        super().__init__(hint)
        self.hint, self.key, self.details = hint, key, list(details)


def call_student(fn: Callable, *args):
    """Call the student's function; ``None`` results and ``NotImplementedError`` mean not attempted."""
    try:
        out = fn(*args)
    except NotImplementedError:
        raise NotAttempted from None
    if out is None:
        raise NotAttempted
    return out


def as_tensor(x) -> torch.Tensor:
    """A student's answer (tensor, float or int) as a detached float64 tensor, for comparing."""
    if isinstance(x, torch.Tensor):
        return x.detach().double()
    return torch.as_tensor(x, dtype=torch.float64)


def tensors_close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """Same shape and ``torch.allclose`` (a shape mismatch is a wrong answer, not an error)."""
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=rtol, atol=atol))


def _fmt(t: torch.Tensor) -> str:
    if t.numel() == 1:
        return f"{float(t):.6g}"
    return f"tensor of shape {tuple(t.shape)}"


def run_check(name: str, student: Callable | None, reference: Callable, cases: Sequence[tuple],
              mistakes: Mapping[str, tuple[str, Callable]], compare: Callable, describe: str,
              explain: Callable | None = None, verbose: bool = True, use: Callable | None = None) -> CheckResult:
    """Compare ``student(*case)`` with ``reference(*case)`` on every case.

    ``mistakes``: key -> (hint, wrong implementation). ``compare(got, want) -> bool``.
    ``explain(got, want, case) -> (hint, key) | None``: generic diagnosis when no mistake matches.
    ``use``: what the result hands back when the student's function is not used (default ``reference``).
    """
    result = CheckResult(name, attempted=True, passed=False, fn=use or reference)
    try:
        if student is None:
            raise NotAttempted
        got_all = []
        for case in cases:  # run every case first, so a mistake is recognised on all of them
            try:
                got_all.append(call_student(student, *case))
            except NotAttempted:
                raise
            except Exception as exc:  # an error on the student's side: name it, maybe recognise it
                hint = _hint_for_error(exc, mistakes)
                raise _Mismatch(hint[0], hint[1], [f"{type(exc).__name__}: {exc}"]) from None
        for got, case in zip(got_all, cases):
            want = reference(*case)
            if not compare(got, want):
                key, hint = _recognise(got_all, cases, mistakes, compare)
                details = [f"got {_describe(got)}, expected {_describe(want)}{_difference(got, want)}"]
                if key is None and explain is not None:
                    found = explain(got, want, case)
                    if found is not None:
                        hint, key = found
                if hint is None:
                    hint = "the result differs from the reference (see below)."
                raise _Mismatch(hint, key, details)
        result.passed, result.fn = True, student
        result.details = [describe]
    except NotAttempted:
        result.attempted = False
    except _Mismatch as m:
        result.hint, result.mistake, result.details = m.hint, m.key, m.details
    if verbose:
        print(result.report())
    return result


def _difference(got, want) -> str:
    try:
        g, w = as_tensor(got), as_tensor(want)
    except (TypeError, ValueError, RuntimeError):
        return ""
    if g.shape == w.shape and g.numel() > 1:
        return f" (largest difference {float((g - w).abs().max()):.3g})"
    return ""


def _describe(x) -> str:
    if isinstance(x, Mapping):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (torch.Tensor, float, int)):
        return _fmt(as_tensor(x))
    return repr(x)


def _recognise(got_all: Sequence, cases: Sequence[tuple], mistakes: Mapping[str, tuple[str, Callable]],
               compare: Callable) -> tuple[str | None, str | None]:
    """The first typical mistake whose output equals the student's on every case tried so far."""
    for key, (hint, wrong) in mistakes.items():
        try:
            if all(compare(got, wrong(*case)) for got, case in zip(got_all, cases)):
                return key, hint
        except Exception:  # a wrong implementation that cannot run on this input does not match
            continue
    return None, None


#: Error-message fragments that point at a mistake, per mistake key (checked by _hint_for_error).
ERROR_SIGNS: dict[str, tuple[str, ...]] = {}


def _hint_for_error(exc: Exception, mistakes: Mapping[str, tuple[str, Callable]]) -> tuple[str, str | None]:
    msg = str(exc)
    for key, signs in ERROR_SIGNS.items():
        if key in mistakes and any(s in msg for s in signs):
            return mistakes[key][0], key
    return f"your function raised {type(exc).__name__}: {msg.splitlines()[0] if msg else ''}", None


def factor_hint(got, want, what: str) -> tuple[str, str] | None:
    """Generic: the same shape but off by a constant factor -> a normalisation hint."""
    g, w = as_tensor(got), as_tensor(want)
    if g.shape != w.shape:
        return (f"the output has shape {tuple(g.shape)}, the reference {tuple(w.shape)}.", "shape")
    nz = w.abs() > 1e-12
    if nz.any():
        ratio = g[nz] / w[nz]
        r = float(ratio.mean())
        if r > 0 and float((ratio - r).abs().max()) < 1e-4 * abs(r) and abs(r - 1) > 1e-3:
            return (f"off by a constant factor {r:.4g}: check the normalisation ({what}).", "factor")
    return None


def tensor_compare(got, want, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """The student's tensor equals the reference's (same shape, ``allclose``)."""
    return tensors_close(as_tensor(got), as_tensor(want), rtol, atol)


# ----------------------------------------------------------------------------- the registry and solutions

@dataclass(frozen=True)
class _Exercise:
    number: int
    check: Callable
    reference: Callable
    short: str


_REGISTRY: dict[str, _Exercise] = {}

#: exercise name -> its checker, in the workbook's order (the exercises' numbers).
EXERCISES: dict[str, Callable] = {}


def register(number: int, name: str, check: Callable, reference: Callable, short: str = "") -> None:
    """Add exercise ``number`` (as the notebooks number them: "Exercise 2: the Gram matrix") under ``name``:
    its checker, the package's reference that :func:`solution` shows, and a short written-out answer.

    :data:`EXERCISES` stays in the exercises' order whatever order the topic modules are imported in."""
    _REGISTRY[name] = _Exercise(number, check, reference, short)
    EXERCISES.clear()
    EXERCISES.update((n, e.check) for n, e in sorted(_REGISTRY.items(), key=lambda item: item[1].number))


def solution(name: str, show: bool = True) -> str:
    """A solution of exercise ``name`` (see :data:`EXERCISES`): a short written-out answer and the package's
    reference source. Printed (``show``) and returned."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown exercise {name!r}; choose from {', '.join(EXERCISES)}")
    ref, short = _REGISTRY[name].reference, _REGISTRY[name].short
    parts = []
    if short.strip():
        parts.append("# A short solution\n" + textwrap.dedent(short).strip())
    parts.append(f"# The package's reference: {ref.__module__}.{ref.__qualname__}\n" + inspect.getsource(ref).rstrip())
    text = "\n\n".join(parts)
    if show:
        print(text)
    return text
