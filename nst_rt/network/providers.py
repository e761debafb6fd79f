"""The execution providers a user may ask for, by name (plain Python: the CLI lists them at startup)."""

PROVIDERS = ("auto", "cpu", "cuda", "openvino")

# onnxruntime's names of the providers nst-rt drives, and the nst-rt extra whose onnxruntime offers each.
CUDA = "CUDAExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"
CPU = "CPUExecutionProvider"
NAMES = {CUDA: "cuda", OPENVINO: "openvino", CPU: "cpu"}
EXTRAS = {CUDA: "gpu", OPENVINO: "openvino"}
# Where tests/test_gpu.py and benchmarks/gpu.py last ran on a GPU (docs/gpu.md has the figures).
CUDA_STATUS = "verified on an NVIDIA H200 with onnxruntime-gpu 1.31.1"
