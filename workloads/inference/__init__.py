"""AI diagnosis serving: Triton / ONNX Runtime with escalation and canary (EdgeInferenceService)."""
