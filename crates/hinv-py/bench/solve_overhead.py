"""The cost of calling hinv from Python: a solve from Python against the same
solve from Rust plus the copy of its input.

Needs the package built in release (`pip install ./crates/hinv-py` or
`maturin develop --release`); runs the Rust side with cargo:

    python crates/hinv-py/bench/solve_overhead.py

Prints, per problem size, the median time of `Factorization.solve(g)` from
Python and from Rust (`examples/solve_timing.rs`, the same deterministic
problem: the losses are checked equal), and the ratio
python / (rust solve + rust copy of g).
"""

import json
import os
import subprocess
import sys
import time

import numpy as np

import hinv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
INPUT, CLASSES = 16, 10


def problem(width, depth, n):
    layers = [{"kind": "dense", "out": width, "activation": "tanh", "bias": True}] * depth
    net = hinv.Network.from_spec(
        {"input_dim": INPUT, "layers": layers, "loss": {"kind": "cross_entropy", "classes": CLASSES, "bias": True}}
    )
    w = net.unflatten(net.init_params(0))
    w = {k: (2.0 * v if k.endswith(".weight") else v) for k, v in w.items()}  # Params::scale(2.0)
    i, j = np.meshgrid(np.arange(n), np.arange(INPUT), indexing="ij")
    x = np.sin(7.0 * i + 3.0 * j + 1.0)
    y = np.arange(n) % CLASSES
    return hinv.Curvature(net, w, x, y)


def python_time(curv, reps):
    f = curv.factor(1e-3)
    g = curv.gradient
    f.solve(g)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f.solve(g)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def rust_time(width, depth, n, reps):
    cmd = ["cargo", "run", "--release", "--quiet", "--locked", "-p", "hinv-py", "--example", "solve_timing", "--"]
    out = subprocess.run(cmd + [str(a) for a in (width, depth, n, reps)], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    sizes = [(8, 2, 4, 2001), (32, 4, 8, 201), (64, 8, 16, 41)]  # about 7 minutes
    print(f"{'params':>7} {'python':>11} {'rust solve':>11} {'rust copy':>10} {'ratio':>6}")
    for width, depth, n, reps in sizes:
        r = rust_time(width, depth, n, reps)
        curv = problem(width, depth, n)
        # Same problem (numpy's sin and Rust's may differ in the last bit).
        assert curv.num_params == r["params"] and abs(curv.loss - r["loss"]) <= 1e-12 * abs(r["loss"]), (curv.loss, r)
        py = python_time(curv, reps)
        ratio = py / (r["solve_s"] + r["copy_s"])
        print(f"{r['params']:>7} {py * 1e3:>9.3f}ms {r['solve_s'] * 1e3:>9.3f}ms {r['copy_s'] * 1e6:>8.2f}us {ratio:>6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
