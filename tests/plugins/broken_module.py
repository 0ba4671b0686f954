"""A plugin module that fails at import (the corpus of bad plugin paths)."""

raise RuntimeError("this plugin module is broken")
