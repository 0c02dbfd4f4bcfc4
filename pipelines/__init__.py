"""Orchestration: enhance (streaming video), the face stage, batched inference, training and evaluation.

Installed as ``vsr.pipelines`` (see setup.cfg); always import it by that name.
"""
