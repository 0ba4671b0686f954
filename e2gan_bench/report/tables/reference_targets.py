"""Fixed time-to-target values from a reference protocol (``e2gan-bench targets make``).

MLPerf's rule: a benchmark's quality target is fixed in its rules, never derived from the submissions compared.
Here the rule is a **reference protocol** — a suite of its own (``suites/targets-*.yaml``) holding the floor
(``identity``: no training) and one reference method that is not among the methods any suite ranks (a long
training of the student architecture from scratch), on seeds no ranked suite uses. For each concept and each
validation metric (PSNR, SSIM, LPIPS):

    target = floor + fraction × (reference − floor)

where ``reference`` and ``floor`` are the means over the reference seeds of the final validation quality of the
reference method and of the floor. The values are written once, with the protocol, commit, date and machine, to
``targets/<name>.yaml``; suites name that file (``target: {file: NAME}``) and every report uses the stored
numbers. Making them again (new code, another machine) is a new version of the file, reviewed like code.
"""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np

from e2gan_bench.config import TARGET_METRICS, TargetFile, TargetProtocol
from e2gan_bench.errors import UserError
from e2gan_bench.record import RunRecord
from e2gan_bench.training.targets import final_value


def _finals(pairs: list[tuple[str, RunRecord]], method: str) -> dict[str, dict[str, list[float]]]:
    """concept -> metric -> the final validation value of each of ``method``'s finished runs."""
    out: dict[str, dict[str, list[float]]] = {}
    for m, r in pairs:
        if m != method or r.status != "ok":
            continue
        pts = (r.val_curve or {}).get("points") or []
        for metric in TARGET_METRICS:
            v = final_value(pts, metric)
            if v is not None:
                out.setdefault(r.concept, {}).setdefault(metric, []).append(v)
    return out


def make_targets(pairs: list[tuple[str, RunRecord]], *, name: str, suite: str, method: str, floor: str,
                 seeds: list[int], fraction: float, resolution: int, curve_images: int,
                 made: dict[str, str], description: str = "") -> TargetFile:
    """The targets file's content from the reference suite's records (UserError when a concept lacks the reference
    or the floor on some seed)."""
    ref, flo = _finals(pairs, method), _finals(pairs, floor)
    concepts = sorted({r.concept for _, r in pairs})
    values: dict[str, dict[str, float]] = {}
    reference: dict[str, dict[str, float]] = {}
    floor_q: dict[str, dict[str, float]] = {}
    for c in concepts:
        for metric in TARGET_METRICS:
            rv, fv = ref.get(c, {}).get(metric, []), flo.get(c, {}).get(metric, [])
            if not rv and not fv:
                continue
            if len(rv) < len(seeds) or len(fv) < len(seeds):
                raise UserError(f"concept '{c}': {metric} of the reference ({len(rv)} of {len(seeds)} seeds) or the "
                                f"floor ({len(fv)}) is missing — did runs fail? (e2gan-bench run retries them)",
                                field="--suite", value=suite)
            r_, f_ = float(np.mean(rv)), float(np.mean(fv))
            values.setdefault(c, {})[metric] = round(f_ + fraction * (r_ - f_), 6)
            reference.setdefault(c, {})[metric] = round(r_, 6)
            floor_q.setdefault(c, {})[metric] = round(f_, 6)
    if not values:
        raise UserError(f"no validation curves of '{method}' and '{floor}' in the store", field="--suite", value=suite)
    rule = (f"target = floor + {fraction:g} × (reference − floor): reference = the final validation quality of "
            f"{method}, mean over seeds {', '.join(map(str, seeds))}; floor = the same for {floor} (no training)")
    protocol = TargetProtocol(suite=suite, method=method, seeds=tuple(seeds), fraction=fraction, floor=floor,
                              rule=rule)
    return TargetFile(name=name, description=description, protocol=protocol, resolution=resolution,
                      curve_images=curve_images, made=made, values=values, reference=reference, floor=floor_q)


def made_stamp(command: str, provenance: dict[str, Any]) -> dict[str, str]:
    """Where and when a targets file was made (the records' commit and machine)."""
    return {"command": command, "commit": str(provenance.get("git")), "machine": str(provenance.get("machine")),
            "cpu": str(provenance.get("cpu")), "torch": str((provenance.get("versions") or {}).get("torch")),
            "date": datetime.date.today().isoformat()}


def to_yaml(tf: TargetFile) -> str:
    import yaml

    head = ("# Fixed time-to-target values, made by `e2gan-bench targets make` (report/tables/reference_targets.py).\n"
            "# Do not edit by hand: make a new version from the reference protocol instead.\n")
    return head + yaml.safe_dump(tf.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=110)
