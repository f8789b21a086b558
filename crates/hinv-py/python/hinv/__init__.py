"""hinv: exact Hessian-inverse-vector products, log-determinants and inertia
for deep networks, from Python.

>>> import numpy as np, hinv
>>> net = hinv.Network.from_spec({"input_dim": 3, "layers": [{"kind": "dense", "out": 4,
...     "activation": "tanh", "bias": True}], "loss": {"kind": "cross_entropy", "classes": 2, "bias": True}})
>>> curv = hinv.Curvature(net, net.init_params(0), np.ones((5, 3)), np.array([0, 1, 0, 1, 1]))
>>> f = curv.factor(1e-2)
>>> step = f.solve(curv.gradient)           # (H + 0.01 I)^-1 g; Newton: params -= step
>>> bool(np.allclose(curv.hvp(step) + 1e-2 * step, curv.gradient))
True

The classes mirror the Rust library's (docs/python.md): `Network`,
`Curvature`, `Factorization` and the results `Inertia`, `LogDet`,
`EigenvalueCount`, `Solution`, `SolveReport`, `RouteCosts`; the Laplace
approximation `Laplace` and its results `Evidence`, `PriorSearch`,
`Predictive` (docs/laplace.md). Errors are subclasses of
`HinvError`. `hinv.torch` converts an `nn.Sequential` and its loss.
"""

from ._errors import (
    HinvError,
    IllConditionedError,
    InvalidArgumentError,
    NonFiniteError,
    NotPositiveDefiniteError,
    OverflowError,
    ShapeError,
    ShiftTooFarError,
    SingularError,
    SpecError,
    TooLargeError,
    UncertifiedError,
)
from ._hinv import (
    Curvature,
    Eigenvalue,
    EigenvalueCount,
    Evidence,
    Factorization,
    Inertia,
    IntervalCount,
    Laplace,
    LogDet,
    Network,
    Predictive,
    PriorSearch,
    RouteCosts,
    Solution,
    SolveReport,
    TrustRegionStep,
    __version__,
)

__all__ = [
    "Curvature",
    "Eigenvalue",
    "EigenvalueCount",
    "Evidence",
    "Factorization",
    "HinvError",
    "IllConditionedError",
    "Inertia",
    "IntervalCount",
    "InvalidArgumentError",
    "Laplace",
    "LogDet",
    "Network",
    "NonFiniteError",
    "NotPositiveDefiniteError",
    "OverflowError",
    "Predictive",
    "PriorSearch",
    "RouteCosts",
    "ShapeError",
    "ShiftTooFarError",
    "SingularError",
    "Solution",
    "SolveReport",
    "SpecError",
    "TooLargeError",
    "TrustRegionStep",
    "UncertifiedError",
    "__version__",
]
