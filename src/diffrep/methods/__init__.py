"""Trainable methods as plug-ins: `base` holds the interface and the registry; the plug-in modules (drl, autoencoder,
score, semisup) register their methods; `run.train_run` trains any of them."""
