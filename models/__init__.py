"""Networks, the model registry and weight loading.

Installed as ``vsr.models`` (see setup.cfg); always import it by that name.
"""

from vsr.models.registry import REGISTRY, ModelSpec, WeightsSpec, build_model, get_spec, load_model_from

__all__ = ["REGISTRY", "ModelSpec", "WeightsSpec", "build_model", "get_spec", "load_model_from"]
