#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md "Packed trials" and docs/gpu.md, in one run on a device machine whose image
# has torch, transformers, peft and accelerate but not trl, optuna, datasets, sqlalchemy or pydantic (carried as
# wheels in .whl/, see /work/.library/device/README.md). Writes its logs under $OUT (or ./runs/gpu-logs).
# .whl/ is not committed (about 10 MB); build it here, on this machine, with:
#   for p in trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 optuna==5.1.0 SQLAlchemy==2.1.9 \
#            alembic==1.20.1 Mako==1.4.3 colorlog==6.12.0 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types \
#            typing-inspection typing_extensions==4.16.0; do
#     python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl "$p"; done
# The image's own torch, transformers, peft and accelerate are used (2026-12-04: 2.11.0+cu130, 5.17.0, 0.21.0, 1.15.0).
set -o pipefail
OUT=${OUT:-runs/gpu-logs}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TRL_EXPERIMENTAL_SILENCE=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
python3 -c "import torch, transformers, peft, accelerate, trl, datasets, pyarrow; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'accelerate', accelerate.__version__, 'trl', trl.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__)" 2>&1 | tee -a "$OUT/device.txt"
quiet() { grep --line-buffered -v -E "Map|Loading weights|Saving the dataset|Generating|Writing model|it/s\]|Warning|warnings.warn"; }
cd bench
# 2026-12-04: one round of 8 trials x 20 steps took about 5 minutes (solo 95 s, set-up and evaluation dominating);
# 8 steps a trial should let 2 rounds (each mode twice, interleaved) finish in about 7; each mode's figures print as
# it ends, so a run cut short still leaves them
timeout "${PACKING_TIMEOUT:-480}" python3 packing.py --qwen --trials 8 --packs 2 4 8 --rounds ${PACKING_ROUNDS:-2} \
  --max-steps ${PACKING_STEPS:-8} \
  --work /tmp/bench-packing --json "$OUT/packing.json" 2>&1 | quiet | tee "$OUT/packing.log"
# the same with the lean ORPO forward (the GPU study's setting): packing no longer refuses it
[ -z "$PACK_LEAN" ] || timeout "${PACKING_TIMEOUT:-480}" python3 packing.py --qwen --lean --trials 8 --packs 4 8 \
  --rounds ${PACKING_ROUNDS:-2} --max-steps ${PACKING_STEPS:-8} \
  --work /tmp/bench-packing --json "$OUT/packing-lean.json" 2>&1 | quiet | tee "$OUT/packing-lean.log"
[ -n "$SKIP_LEAN" ] || timeout "${LEAN_TIMEOUT:-150}" python3 gpu_orpo_memory.py --work-dir /tmp/bench-gpu --json "$OUT/lean.json" 2>&1 \
  | quiet | tee "$OUT/lean.log"
