"""Predictions of a finished stage output (a `save_pretrained` folder): label
probabilities, generated text, masked fills. `folder` reads what a folder holds without
torch; `predictor` loads and runs the model; `serve` is the window's worker process
(`python -m engine.predict serve FOLDER`, JSON lines over stdin/stdout, docs/playground.md).
"""
