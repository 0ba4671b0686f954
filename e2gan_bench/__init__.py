"""e2gan-bench: efficient training of efficient GANs for image-to-image translation, benchmarked."""

__version__ = "0.1.0"
