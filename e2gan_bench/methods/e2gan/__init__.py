"""E2GAN's method (Gong et al., ICML 2024), in one folder: its preset (``e2gan.yaml``), its card (``README.md``),
its trainable sets ``lora-crucial`` / ``lora-all`` (:mod:`.trainable`: LoRA on the base generator's crucial layers,
or on all of them, the adapters alone kept) and its rank search (:mod:`.rank_search`: the paper's searched
allocation and other strategies, as plugins)."""

from e2gan_bench.methods.e2gan import trainable as _trainable  # noqa: F401  (registers lora-crucial, lora-all)
