"""Image features: what turns images (and captions) into vectors, and the local weights those networks load.

FID/KID extractors (:mod:`.extractors`), CLIP image/text embeddings (:mod:`.clip`), cheap offline thumbnail
features (:mod:`.thumb`) and the registry of pretrained weights with their hashes (:mod:`.weights`). Metrics
score with them; data selection and base-concept selection cluster with them.
"""
