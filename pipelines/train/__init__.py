"""SRGAN training (``vsr train``): config, data, degradations, losses, the loop, checkpoints.

Entry points: ``config_toml.resolve`` builds a validated ``config.TrainConfig``,
``loop.train(cfg)`` runs or resumes it, ``checkpoint.export_weights`` releases
the EMA generator as ``.safetensors``.  Nothing is imported here, so importing
one module does not pull in torch for the others.
"""
