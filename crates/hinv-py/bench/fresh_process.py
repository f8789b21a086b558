"""The phases of a first solve from Python, each run in a fresh process: the
cost of first touches of memory, which the module's allocator decides (it
links mimalloc, whose heap has 2 MiB pages; see docs/benchmarks.md, "The
library and the binary's allocator").

Compares the `hinv` packages installed in two or more Python environments
(for instance one built before a change, one after), run alternately so
that the machine's load hits them alike:

    python crates/hinv-py/bench/fresh_process.py RUNS PYTHON [PYTHON ...]

Each PYTHON is an interpreter whose environment has `hinv` built with
`--release`. Prints, per network (the benchmarks' tanh networks without
bias: 5 inputs, 3 classes, `eps = 1e-3`), the median of each phase
(`Curvature(...)`, `factor`, `solve`), the median and fastest of their
sum, and each interpreter's sums relative to the first's.
"""

import json
import statistics
import subprocess
import sys

# (depth, width, batch)
NETWORKS = [(30, 10, 2), (256, 8, 2), (16, 32, 2), (16, 8, 16)]

ONE_RUN = r"""
import json, sys, time
import numpy as np
import hinv
depth, width, batch = map(int, sys.argv[1:4])
spec = {"input_dim": 5, "layers": [{"kind": "dense", "out": width, "activation": "tanh", "bias": False}] * depth,
        "loss": {"kind": "cross_entropy", "bias": False, "classes": 3}}
net = hinv.Network.from_spec(spec)
w = net.init_params(20240601)
rng = np.random.default_rng(20240602)
x, y = rng.standard_normal((batch, 5)), rng.integers(0, 3, size=batch)
t = time.perf_counter(); curv = hinv.Curvature(net, w, x, y); derivatives = time.perf_counter() - t
g = curv.gradient
t = time.perf_counter(); f = curv.factor(1e-3); factor = time.perf_counter() - t
t = time.perf_counter(); f.solve(g); solve = time.perf_counter() - t
print(json.dumps([derivatives, factor, solve]))
"""


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    runs, pythons = int(sys.argv[1]), sys.argv[2:]
    for net in NETWORKS:
        times = {py: [] for py in pythons}
        # One untimed round warms the page cache.
        for i in range(runs + 1):
            for py in pythons:
                args = [py, "-c", ONE_RUN, *map(str, net)]
                run = subprocess.run(args, capture_output=True, text=True)
                if run.returncode != 0:
                    sys.exit(f"{py} failed on L{net[0]} h{net[1]} B{net[2]}:\n{run.stderr}")
                if i > 0:
                    times[py].append(json.loads(run.stdout))
        first = pythons[0]
        sums = {py: [sum(r) for r in times[py]] for py in pythons}
        for py in pythons:
            phases = [statistics.median(r[k] for r in times[py]) * 1e3 for k in range(3)]
            med, fastest = statistics.median(sums[py]), min(sums[py])
            ratio = med / statistics.median(sums[first])
            fastest_ratio = fastest / min(sums[first])
            print(
                f"L{net[0]} h{net[1]} B{net[2]} {py}: derivatives {phases[0]:.2f}, factor {phases[1]:.2f}, "
                f"solve {phases[2]:.2f}, all three {med * 1e3:.2f} (fastest {fastest * 1e3:.2f}) ms; "
                f"{ratio:.2f}x ({fastest_ratio:.2f}x) the first"
            )


if __name__ == "__main__":
    main()
