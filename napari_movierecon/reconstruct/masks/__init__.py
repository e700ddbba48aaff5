"""Where on the screen the neurons look: per-pixel alpha maps and the masks cut from them.

A mask is an "alpha" map (H, W) float32 in [0, 1]; the update mask (pixels the
reconstruction may change) is ``alpha >= update threshold`` (0.5) and the
evaluation mask (pixels scored) is ``alpha >= eval threshold`` (1.0), so the
evaluation mask always lies inside the update mask.

- ``masks.file``: the ``Mask`` and its file (one safetensors file: the ``alpha``
  array plus a JSON record of how it was made), the thresholds, ``cut_masks``.
- ``masks.transparency``: the reference's estimate (Bauer et al. 2025), on
  training trials only.
- ``masks.coverage``: a fast proxy from the encoder's input gradient.
- ``masks.estimation``: what the two estimators share (checks, the record,
  rescaling to alpha).
"""
