#!/usr/bin/env bash
# The GPU check, in at most 8 minutes on one H100/H200: the gpu-marked tests, then the
# table of benchmarks/gpu_table.py (the GPU targets of shared/performance.md), printed and
# written to $OUT/gpu_table.md (or ./gpu_table.md). Runs with the machine's own python3
# and torch (nothing can be installed there): hesskit is installed in place, no deps.
#
#   bash benchmarks/gpu_check.sh            # on the GPU machine, from the repo root
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
out="${OUT:-.}"

nvidia-smi -L || true
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
  || echo "note: could not install hesskit in place; using PYTHONPATH"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

# 1. correctness on the GPU (a few seconds)
timeout 180 python3 -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider 2>&1 \
  | tee "$out/gpu_tests.log" | tail -5
tests=${PIPESTATUS[0]}

# 2. the benchmark table (wide MLPs at n = 1e6 and 1e7, then a ResNet-18-sized CNN)
timeout 330 python3 -m benchmarks.gpu_table --device cuda 2>&1 | tee "$out/gpu_table.md"
table=${PIPESTATUS[0]}

echo "gpu tests exit $tests, table exit $table"
exit $(( tests != 0 || table != 0 ))
