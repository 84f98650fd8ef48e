"""Training of FaceLink's learned parts (the ``train`` extra: PyTorch, training time only).

    python -m facelink.train refiner --out runs/refiner [--steps 12000] [--seed 0]

See ``docs/generator.md`` ("Learned refinement") for the recipe and the measured results.
The runtime never imports this package: the trained network ships as ONNX.
"""
