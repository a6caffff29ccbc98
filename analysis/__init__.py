"""Numbers only: geometry, heatmaps, metrics, masking, saliency, datasets, training, SpRAy, prototypes.

No Qt here, and no TensorFlow at import time: the modules that need TensorFlow import it inside
their functions through :mod:`analysis._optional`.
"""

from __future__ import annotations

__all__: list[str] = []
