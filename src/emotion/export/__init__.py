"""The ONNX export (fp32, int8) with its parity proof, the model contract and the model card."""
