"""vsr: face-aware video super-resolution.

The import root stays light: importing ``vsr`` must not import torch or av, so
``vsr --help`` and ``vsr probe`` start fast.  Networks and weights live in
``vsr.models``; orchestration (enhance, face stage, training, evaluation) in
``vsr.pipelines``; decoding and encoding in ``vsr.media``.
"""

__version__ = "0.1.0"
