"""A metric from user code, in one file, as a plugin package would ship it: the tests expose it through the
entry-point group ``e2gan_bench.metric`` (name ``mae``), exactly as ``pip install``-ing such a package would."""

import numpy as np

from e2gan_bench import plugins
from e2gan_bench.metrics import Backend, Metric, Tolerance


class MeanAbsError(Metric):
    name = "mae"
    what = "mean absolute difference of the outputs from the teacher's, in grey levels (0-255)"
    higher_is_better = False
    fmt = "{:.2f}"
    label = "MAE\n(grey levels)"  # how reports show it: its header,
    headline = 5  # a headline quality column after the built-in four,
    by_concept = True  # and a methods × concepts table on the page
    gate = Tolerance(abs=2.0, reason="two grey levels are about the smallest visible change")

    class Params(plugins.Params):
        channel: int | None = None  # one colour channel only (None: all three)

    def resolve(self, spec):
        return Backend("numpy")

    def compute(self, ctx):
        out, tgt = ctx.outputs.astype(np.float64), ctx.targets.astype(np.float64)
        if self.params.channel is not None:
            out, tgt = out[..., self.params.channel], tgt[..., self.params.channel]
        return float(np.abs(out - tgt).mean())
