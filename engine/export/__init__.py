"""Export of a stage output: safetensors (the save_pretrained folder with a model card),
ONNX (checked with ONNX Runtime) and GGUF (checked by loading it back with transformers).
`request.py` reads what a folder holds without torch; each format's module loads torch."""
