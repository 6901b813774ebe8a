"""Training a model: `train.train_spec` runs a spec end to end (run folder, resume, DDP), `loop.fit`
is the epoch loop, with early stopping, optimizers, metrics, the run writer and plots beside them.
"""
