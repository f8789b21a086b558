"""Trains a small tanh network on scikit-learn's digits with a damped Newton
(Levenberg-Marquardt) step computed by hinv at every iteration.

    python crates/hinv-py/examples/digits_newton.py    # needs torch, scikit-learn, hinv

Each iteration takes a minibatch, builds hinv's curvature of the batch loss
in memory (no files), raises the damping eps until H + eps I is certified
positive definite (`inertia()`), solves (H + eps I) s = g exactly, and
adapts eps by the ratio of the actual to the predicted decrease of the loss.
"""

import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import hinv
import hinv.torch as ht


def main(iterations=30, batch=48, seed=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    order = rng.permutation(len(X))
    train, test = order[:1500], order[1500:]
    Xt, yt = torch.tensor(X, dtype=torch.float64), torch.tensor(y)

    model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10)).double()
    params = list(model.parameters())
    eps = 1.0
    print(f"{sum(p.numel() for p in params)} parameters, minibatches of {batch}")
    print(f"{'it':>3} {'batch loss':>10} {'train loss':>10} {'test acc':>8} {'eps':>8} {'rho':>6} {'s':>5}")
    start = time.perf_counter()
    for it in range(iterations):
        idx = torch.tensor(rng.choice(train, batch, replace=False))
        xb, yb = Xt[idx], yt[idx]
        curv = ht.curvature(model, xb, yb, "cross_entropy")
        g = curv.gradient
        while True:  # damping until H + eps I is certified positive definite
            f = curv.factor(eps)
            inertia = f.inertia()
            if inertia.negative == 0 and inertia.uncertain == 0:
                break
            eps *= 10
        step = f.solve(g)  # (H + eps I)^-1 g; the Newton step is -step
        predicted = g @ step - 0.5 * step @ curv.hvp(step)  # decrease of the quadratic model
        saved = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, s in zip(params, ht.unflatten(model, step)):
                p.sub_(s)
            actual = curv.loss - F.cross_entropy(model(xb), yb).item()
        rho = actual / predicted if predicted > 0 else -1.0
        if rho < 0:  # reject: restore and damp harder
            with torch.no_grad():
                for p, q in zip(params, saved):
                    p.copy_(q)
        eps = eps * 4 if rho < 0.25 else (eps / 3 if rho > 0.75 else eps)
        eps = min(max(eps, 1e-4), 1e6)
        if it % 3 == 0 or it == iterations - 1:
            with torch.no_grad():
                train_loss = F.cross_entropy(model(Xt[train]), yt[train]).item()
                acc = (model(Xt[test]).argmax(1) == yt[test]).double().mean().item()
            print(f"{it:>3} {curv.loss:>10.4f} {train_loss:>10.4f} {acc:>8.3f} {eps:>8.1e} {rho:>6.2f} "
                  f"{time.perf_counter() - start:>5.1f}")
    return acc


if __name__ == "__main__":
    main()
