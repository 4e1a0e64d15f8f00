#!/usr/bin/env bash
# GPU determinism and speed of the paper grid, as one prepared script (issue: "GPU determinism,
# measured"). Run on a machine with a GPU, from the repository root, with the public data in
# $RP_JAX_DATA and a JAX with CUDA installed:
#
#   bash benchmarks/gpu_check.sh /tmp/gpu_check
#
# It runs configs/paper.py (hashing, 5 seeds) three times: twice with XLA's deterministic GPU ops
# (the launchers' default) and once without, each into its own workdir, and prints
#   - the wall time of each run and per stage (timings.json), compile included;
#   - whether the two deterministic runs gave byte-identical results.csv (they must);
#   - how many cells the non-deterministic run changed against the first;
#   - compile vs run time of the router grids (a warm rerun of the same config skips compiles
#     through JAX's persistent cache: the difference between run 1 and run 2 is compile time).
set -euo pipefail
out="${1:-/tmp/gpu_check}"
mkdir -p "$out"
export RP_JAX_CACHE="$out/cache"
run() {  # name, extra flags...
  local name=$1; shift
  local t0; t0=$(date +%s.%N)
  python -m launch.sweep --config=configs/paper.py --workdir="$out/$name" "$@" > "$out/$name.log" 2>&1
  echo "$name: $(echo "$(date +%s.%N) - $t0" | bc) s wall"
  python -c "import json,sys; t=json.load(open('$out/$name/timings.json')); print('  ' + ', '.join(f'{k} {v:.1f}s' for k, v in t.items()))"
}
run det1
run det2
run nondet --config.deterministic=False
if cmp -s "$out/det1/results.csv" "$out/det2/results.csv"; then
  echo "deterministic runs: results.csv byte-identical"
else
  echo "deterministic runs: results.csv DIFFER"
fi
python - "$out" <<'PY'
import sys, pandas as pd
out = sys.argv[1]
a = pd.read_csv(f"{out}/det1/results.csv", keep_default_na=False)
b = pd.read_csv(f"{out}/nondet/results.csv", keep_default_na=False)
cells = a["router"].isin(["sim", "mlp", "graph"])
diff = (a.loc[cells, "avg_performance"] - b.loc[cells, "avg_performance"]).abs()
print(f"non-deterministic run: {int((diff > 0).sum())} of {int(cells.sum())} cells changed, max |diff| {diff.max():.4f}")
PY
