"""Which numbers may be averaged or compared at all: one backend per metric (a random-init feature extractor and
real Inception weights, or a CPU and a GPU measurement, are never mixed)."""

from __future__ import annotations

import pandas as pd


def mixed_backends(df: pd.DataFrame, metrics: list[str], methods: tuple[str, ...] | None = None
                   ) -> dict[str, list[str]]:
    """Metrics whose values (where measured, among ``methods`` when given) come from more than one backend label
    (``backend_<metric>`` in a runs frame). A run without a label beside runs with one (a CPU training cost beside a
    GPU one) is a mix too."""
    rows = df if methods is None else df[df["method"].isin(methods)]
    out = {}
    for m in metrics:
        col = f"backend_{m}"
        if col in rows and m in rows:
            vals = sorted({str(v) for v in rows.loc[rows[m].notna(), col].fillna("unrecorded")})
            if len(vals) > 1:
                out[m] = vals
    return out
