"""ComfyVN layers: flat art -> depth planes on ONNX Runtime (depth model, plane split, hole fill, parallax data)."""
