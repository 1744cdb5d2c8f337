"""Stage ``export``: ONNX (fp32, int8) with a parity proof, the model contract, latency."""
