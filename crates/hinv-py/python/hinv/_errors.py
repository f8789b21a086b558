"""The exception classes of hinv: one per kind of error of the Rust library.

Every exception carries the Rust error's message, subclasses `HinvError`, and
also the built-in exception a Python caller would expect (`ValueError` for a
bad argument, `ArithmeticError` for a singular system, `MemoryError` for a
refused allocation), so both `except hinv.SingularError` and
`except ArithmeticError` work. Typed fields (``eps``, ``backward_error`` ...)
are set as attributes where the Rust error has them.
"""

import builtins


class HinvError(Exception):
    """Base class of every error raised by hinv."""


class ShapeError(HinvError, ValueError):
    """An argument has the wrong length or shape, or does not fit the network
    (wrong widths, wrong number of parameters, a missing or extra tensor,
    inputs and targets of different batch sizes, a class index out of range)."""


class NonFiniteError(HinvError, ValueError):
    """An argument holds a NaN or an infinity. Attributes: ``index``, ``value``."""


class InvalidArgumentError(HinvError, ValueError):
    """An argument is out of its range or does not fit the others: a
    numeric one (eps, a threshold, a tolerance, an activation parameter, a
    width), a misspelt option, or an ``elimination`` with
    ``route="woodbury"``. Attribute ``value`` where a number was refused."""


class SpecError(HinvError, ValueError):
    """The network spec is not valid (docs/spec.md): unknown key, wrong type,
    missing field."""


class IllConditionedError(HinvError, ArithmeticError):
    """No elimination reached the requested backward error: H + eps I is too
    ill-conditioned at this eps. Attributes: ``eps``, ``backward_error``,
    ``tolerance``, ``iterations``."""


class SingularError(HinvError, ArithmeticError):
    """H + eps I is singular at this eps. Attributes: ``eps``, ``block``,
    ``layer``, ``pivot``."""


class ShiftTooFarError(HinvError, ArithmeticError):
    """``Factorization.solve_shifted`` did not reach its tolerance: the
    factorization at ``eps`` preconditions ``H + shifted_eps I`` too poorly;
    factor at ``shifted_eps`` afresh. Attributes: ``eps``, ``shifted_eps``,
    ``backward_error``, ``tolerance``, ``iterations``."""


class OverflowError(HinvError, builtins.OverflowError):  # noqa: A001 - a builtins.OverflowError too
    """A NaN or infinity appeared: the network overflows at these parameters
    (in the loss, gradient or a derivative block), or a factorization or solve
    overflowed on a system too close to singular. Attributes: ``value``,
    ``what`` (where, as text)."""


class TooLargeError(HinvError, MemoryError):
    """A computation would need more memory than allowed; refused before
    allocating. Attributes: ``needed`` and ``limit`` in bytes, when known."""


class UncertifiedError(HinvError, ArithmeticError):
    """A spectral computation (an eigenvalue bracket, a trust-region step)
    could not certify its answer: counts stayed uncertain or an iteration
    did not converge."""


class NotPositiveDefiniteError(HinvError, ArithmeticError):
    """The Laplace approximation's posterior precision ``s C + delta I`` is not
    certifiably positive definite at this prior precision (an indefinite
    Hessian, or signs the factorization cannot certify): use the Gauss–Newton
    curvature or a larger prior precision. Attributes: ``prior_precision``,
    ``inertia``."""
