"""Evaluation protocols behind ``vsr eval``: images, faces and video, always beside bicubic and Lanczos.

- ``run``: ``evaluate_images`` and ``evaluate_video`` (the entry points);
- ``protocol``: modcrop, MATLAB bicubic downsampling, scoring on Y and RGB with border shaving;
- ``results``: the report dataclasses (``EvalReport.to_dict`` is the ``--json`` output);
- ``degrade``: the seeded "real-world" faces protocol (blur, noise, H.264);
- ``grid``: the ``--grid`` PNG of examples.
Metrics themselves (PSNR, SSIM, Y) are in ``vsr.pipelines.metrics``, shared with training.
"""

from vsr.pipelines.evaluate.run import evaluate_images, evaluate_video

__all__ = ["evaluate_images", "evaluate_video"]
