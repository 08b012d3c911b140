#!/usr/bin/env bash
# Install the peers that the asv suite compares hesskit against, into the active Python,
# without touching its torch. BackPACK declares a torchvision dependency that it does not
# need for Hessian-vector products; letting pip resolve it would replace a CPU torch with
# a multi-GB CUDA build, so BackPACK and curvlinops go in with --no-deps and their real
# dependencies are listed here.
set -euo pipefail
python -m pip install "pyhessian==0.1" "hessian-eigenthings==1.0.0a5"
python -m pip install --no-deps "backpack-for-pytorch==1.7.1" "curvlinops-for-pytorch==3.0.1"
python -m pip install einops unfoldNd einconv linear_operator opt-einsum tqdm
python - <<'PY'
import backpack, curvlinops, hessian_eigenthings, pyhessian, torch
print("peers installed beside torch", torch.__version__)
PY
