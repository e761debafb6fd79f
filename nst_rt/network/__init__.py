"""The ONNX Runtime side: finding and checking an exported model, sessions and providers, precision."""
