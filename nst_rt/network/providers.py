"""The execution providers a user may ask for, by name (plain Python: the CLI lists them at startup)."""

PROVIDERS = ("auto", "cpu", "cuda", "openvino")
