#!/usr/bin/env bash
# Everything that needs a CUDA GPU, as one command, on a machine with onnxruntime-gpu and CuPy
# (pip install -e '.[gpu,export,test]'):
#
#     bash scripts/gpu_check.sh [OUTPUT_DIR]
#
# 1. the GPU tests: the Network device path (tests/test_gpu.py), the optimiser on CuPy against numpy
#    (tests/test_optimize_device.py), the objective graph on CUDA (tests/test_fused.py);
# 2. benchmarks/gpu.py on seeded random VGG-19 weights exported here: passes, evaluations and runs at
#    256/512/1024 px beside the CPU provider and torch on the same GPU;
# 3. benchmarks/gpu_optimizer.py: the L-BFGS memory's work per iteration on CuPy against numpy, 256/512/1024 px;
# 4. benchmarks/gpu_torch_loop.py: an nst-rt iteration against a torch L-BFGS loop on the same GPU and weights
#    (fp32 vs fp32, TF32 vs torch's default), 256/512/1024 px;
# 5. the default 512 px run's wall time and a 4096 px untiled run's host peak RSS (/usr/bin/time -v);
# 6. benchmarks/optimizer_host.py at 512 px (the host L-BFGS memory against an evaluation).
# Output goes to OUTPUT_DIR (default ./gpu-check), one log per step, with nvidia-smi and the versions.
set -u -o pipefail
out="${1:-gpu-check}"
mkdir -p "$out" && out=$(cd "$out" && pwd)
python=${PYTHON:-python}
models="$out/models"

nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed: no NVIDIA driver here?" | tee -a "$out/nvidia-smi.txt"
"$python" - <<'PY' 2>&1 | tee "$out/versions.txt"
import onnxruntime as ort
print("onnxruntime", ort.__version__, ort.get_available_providers())
try:
    import cupy
    print("cupy", cupy.__version__, "CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "devices", cupy.cuda.runtime.getDeviceCount())
except Exception as exc:  # the optimiser's GPU tests skip without it
    print("cupy unavailable:", exc)
PY

if [ ! -d "$models/vgg19" ]; then
    "$python" - "$models" <<'PY' 2>&1 | tee "$out/export.txt"
import sys
from pathlib import Path

import torch

from nst_rt.export.exporter import export_model
from nst_rt.export.vgg import random_state_dict

models = Path(sys.argv[1])
models.mkdir(parents=True, exist_ok=True)
torch.save(random_state_dict("vgg19", 0), models / "vgg19-random.pth")
export_model("vgg19", models, weights=models / "vgg19-random.pth")
PY
fi

status=0
"$python" -m pytest -q -m gpu tests/test_gpu.py tests/test_optimize_device.py tests/test_fused.py -ra \
    2>&1 | tee "$out/tests.txt" || status=1
(cd benchmarks && "$python" gpu.py --models-dir "$models" --model vgg19 --sizes 256,512,1024 --repeats 3 \
    --run-sizes 256,512 --default-sizes 512) 2>&1 | tee "$out/benchmark-gpu.txt" || status=1
(cd benchmarks && "$python" gpu_optimizer.py --sizes 256,512,1024 --maxcor 100 --repeats 3) \
    2>&1 | tee "$out/benchmark-gpu-optimizer.txt" || status=1
(cd benchmarks && "$python" gpu_torch_loop.py --models-dir "$models" --weights "$models/vgg19-random.pth" \
    --sizes 256,512,1024 --iterations 30) 2>&1 | tee "$out/benchmark-torch-loop.txt" || status=1
# Whole runs from process start to file written: the default 512 px run, and 4096 px without tiles (2
# iterations, one scale) for the host's peak RSS ("Maximum resident set size" in the log).
for run in "default-512 --size 512" "4096-untiled --size 4096 --scales 1 --iterations 2"; do
    name=${run%% *}
    # shellcheck disable=SC2086
    /usr/bin/time -v "$python" -m nst_rt stylize examples/content/chelsea.png examples/style/starry_night.jpg \
        -o "$out/$name.png" --models-dir "$models" --provider cuda ${run#* } > "$out/run-$name.txt" 2>&1 \
        || status=1
    grep -E "Elapsed|Maximum resident" "$out/run-$name.txt"
done
(cd benchmarks && "$python" optimizer_host.py --model "$models/vgg19" --repeats 2) \
    2>&1 | tee "$out/benchmark-optimizer-host.txt" || status=1
echo "logs in $out; exit status $status"
exit $status
