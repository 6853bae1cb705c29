"""Run-time support: training, data, search, ONNX runtime checks."""
