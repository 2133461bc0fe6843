"""Networks by catalog name: `build_model(spec.model, input_shape, num_outputs)`.

Importing this package registers every model of `sam_core.spec.catalog.MODELS`.
Initial weights come from torch's global generator, which the trainer seeds.
"""

from sam_core.models import (  # noqa: F401  (they register)
    cnn,
    dense,
    resnet,
    toy,
    two_layer,
    wide_resnet,
)
from sam_core.models.registry import (
    ModelEntry,
    build_model,
    describe_models,
    list_models,
    model_params,
)

__all__ = ["ModelEntry", "build_model", "describe_models", "list_models", "model_params"]
