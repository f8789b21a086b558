"""hinv's exact Laplace approximation against laplace-torch's "full" and
"kron" GGN on the same small, trained network (docs/laplace.md).

    /work/torchenv/bin/python scripts/laplace_compare.py [path/to/hinv]

Trains a 2-hidden-layer tanh classifier (input 4, width 16, 3 classes,
N = 64 samples) in float64, exports it with the script of docs/pytorch.md,
and prints, for the prior precisions 0.1, 1, 10: the log marginal
likelihood of hinv (GGN, automatic route), laplace-torch full and kron;
the predictive output variances of 4 test inputs; and the times.
"""
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parent.parent
HINV = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "release" / "hinv")

# The exporter, taken verbatim from docs/pytorch.md.
doc = (ROOT / "docs" / "pytorch.md").read_text()
code = re.search(r"```python\n(# export_for_hinv\.py.*?)```", doc, re.S).group(1)
exporter = {"__name__": "export_for_hinv"}
exec(compile(code, "export_for_hinv.py", "exec"), exporter)

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
N, D, W, C = 64, 4, 16, 3
X = torch.randn(N, D)
y = (X[:, 0] + X[:, 1] ** 2 - X[:, 2] > 0.5).long() + (X[:, 3] > 1.0).long()
model = nn.Sequential(nn.Linear(D, W), nn.Tanh(), nn.Linear(W, W), nn.Tanh(), nn.Linear(W, C))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for _ in range(500):
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(X), y)
    loss.backward()
    opt.step()
Xtest = torch.randn(4, D)

tmp = pathlib.Path(tempfile.mkdtemp())
exporter["export"](model, X, y, "cross_entropy", str(tmp / "net"))
np.save(tmp / "test_x.npy", Xtest.numpy())
P = sum(p.numel() for p in model.parameters())
print(f"P = {P}, N = {N}, training loss {loss.item():.6f}")

from laplace import Laplace  # noqa: E402

loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=N)
results = {}
for structure in ["full", "kron"]:
    t0 = time.perf_counter()
    la = Laplace(model, "classification", subset_of_weights="all", hessian_structure=structure)
    la.fit(loader)
    t_fit = time.perf_counter() - t0
    evs = {}
    for delta in [0.1, 1.0, 10.0]:
        t0 = time.perf_counter()
        evs[delta] = la.log_marginal_likelihood(prior_precision=torch.tensor(delta)).item()
        t_ev = time.perf_counter() - t0
    la.prior_precision = torch.tensor(1.0)
    t0 = time.perf_counter()
    f_mu, f_var = la._glm_predictive_distribution(Xtest)
    t_pred = time.perf_counter() - t0
    results[structure] = (evs, f_var.diagonal(dim1=-2, dim2=-1).numpy(), t_fit, t_ev, t_pred, la._backend_cls.__name__)

hinv_evs = {}
hinv_t = {}
base = ["--spec", tmp / "net.json", "--weights", tmp / "net.safetensors", "--inputs", tmp / "net_x.npy",
        "--targets", tmp / "net_y.npy", "--json"]
for delta in [0.1, 1.0, 10.0]:
    cmd = [HINV, "laplace", *map(str, base), "--prior-precision", str(delta)]
    if delta == 1.0:
        cmd += ["--test-inputs", str(tmp / "test_x.npy")]
    t0 = time.perf_counter()
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    hinv_t[delta] = time.perf_counter() - t0
    hinv_evs[delta] = out["evidence"]["log_marginal_likelihood"]
    if delta == 1.0:
        hinv_var = np.array([[c[k][k] for k in range(C)] for c in out["predictive"]["covariance"]])
        hinv_route = out["evidence"]["route"]
        hinv_timings = out["timings_s"]

print("\nlog marginal likelihood")
print(f"{'delta':>6} {'hinv (exact GGN)':>22} {'laplace-torch full':>22} {'laplace-torch kron':>22}")
for d in [0.1, 1.0, 10.0]:
    print(f"{d:>6} {hinv_evs[d]:>22.12f} {results['full'][0][d]:>22.12f} {results['kron'][0][d]:>22.12f}")
print("\npredictive output variances at delta = 1 (diag of J* (N GGN + delta I)^-1 J*^T), test sample 0..3")
for name, v in [("hinv", hinv_var), ("full", results["full"][1]), ("kron", results["kron"][1])]:
    print(f"{name:>5}: " + "; ".join(" ".join(f"{x:.6e}" for x in row) for row in v))
print(f"\nmax relative difference of the variances, hinv vs full: {np.max(np.abs(hinv_var - results['full'][1]) / np.abs(results['full'][1])):.2e}")
print("\ntimes (s)")
for s in ["full", "kron"]:
    _, _, t_fit, t_ev, t_pred, backend = results[s]
    print(f"laplace-torch {s} ({backend}): fit {t_fit:.4f}, evidence {t_ev:.4f}, predictive {t_pred:.4f}")
print(f"hinv laplace ({hinv_route} route), whole process incl. file reading, delta = 1 with predictive: {hinv_t[1.0]:.4f}; inside: {hinv_timings}")
