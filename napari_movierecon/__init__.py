"""napari-movierecon: movie reconstruction from mouse visual-cortex activity.

The core (``recording``, ``io``, ``insilico``) imports numpy/torch/scipy only;
everything napari/Qt lives in ``napari_movierecon._napari``.
"""

from napari_movierecon.errors import MovieReconError, RecordingError

__version__ = "0.1.0"
__all__ = ["MovieReconError", "RecordingError", "__version__"]
