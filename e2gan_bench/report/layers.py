"""Crucial-layer analysis: fine-tune each layer group alone (LoRA, and full) from the base model and
measure quality gained per trained parameter and per training second, so the choice of LoRA
targets is measured rather than assumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from e2gan_bench.cache import atomic_write_text
from e2gan_bench.config import MethodEntry, Suite
from e2gan_bench.harness.spec import model_kwargs
from e2gan_bench.models.generators import CRUCIAL_GROUPS, build_generator
from e2gan_bench.record import RunRecord

ZERO_SHOT = "base-zero-shot"


def layer_suite(suite: Suite, concepts: list[str] | None, steps: int | None, rank: int) -> Suite:
    """The analysis grid as a suite: zero-shot base, LoRA / full per group, and the reference sets."""
    groups = list(build_generator("e2gan", model_kwargs(suite, "e2gan")).layer_groups())
    budget = {"steps": steps} if steps else {}
    lora = {"lora": {"rank": rank, "search": "fixed"}, "data": {"selector": "all"}, "budget": budget}
    full = {"data": {"selector": "all"}, "budget": budget}
    methods = [MethodEntry(name=ZERO_SHOT, method="e2gan", overrides={"trainable": "none", "data": {"selector": "all"}})]
    for g in groups:
        methods.append(MethodEntry(name=f"lora-{g}", method="e2gan", overrides={**lora, "groups": [g]}))
        methods.append(MethodEntry(name=f"full-{g}", method="full-finetune", overrides={**full, "groups": [g]}))
    methods += [
        MethodEntry(name="lora-crucial", method="e2gan", overrides={**lora, "trainable": "lora-crucial"}),
        MethodEntry(name="lora-all", method="e2gan", overrides={**lora, "trainable": "lora-all"}),
        MethodEntry(name="full-all", method="full-finetune", overrides=full),
    ]
    return suite.model_copy(update={"name": f"{suite.name}-layers", "concepts": tuple(concepts or suite.concepts),
                                    "methods": tuple(methods), "seeds": suite.seeds[:1]})


def analyse(pairs: list[tuple[str, RunRecord]]) -> pd.DataFrame:
    rows = [{"method": m, "concept": r.concept, "psnr": r.value("psnr"), "kid": r.value("kid"),
             "params": r.value("trainable_params"), "seconds": r.value("train_seconds")} for m, r in pairs]
    df = pd.DataFrame(rows)
    zs = df[df.method == ZERO_SHOT].set_index("concept")["psnr"]
    df = df[df.method != ZERO_SHOT].copy()
    df["gain_db"] = df["psnr"] - df["concept"].map(zs)
    g = df.groupby("method", sort=False).agg(psnr=("psnr", "mean"), gain_db=("gain_db", "mean"),
                                             params=("params", "mean"), seconds=("seconds", "mean"))
    g["gain_per_kparam"] = g["gain_db"] / (g["params"] / 1000.0)
    g["gain_per_second"] = g["gain_db"] / g["seconds"]
    g.insert(0, "mode", [m.split("-", 1)[0] for m in g.index])
    g.insert(1, "group", [m.split("-", 1)[1] for m in g.index])
    return g.reset_index()


def verdict(table: pd.DataFrame) -> list[str]:
    lines = []
    t = table.set_index("method")
    if {"lora-crucial", "lora-all"} <= set(t.index):
        c, a = t.loc["lora-crucial", "gain_db"], t.loc["lora-all", "gain_db"]
        share = c / a if a > 0 else float("nan")
        holds = a > 0 and share >= 0.9
        lines.append(f"- LoRA on the paper's crucial set ({', '.join(CRUCIAL_GROUPS)}) gains {c:.2f} dB over the "
                     f"zero-shot base vs {a:.2f} dB for LoRA on every layer ({share:.0%}) with "
                     f"{t.loc['lora-crucial', 'params']:,.0f} vs {t.loc['lora-all', 'params']:,.0f} parameters: "
                     f"the crucial set **{'holds' if holds else 'does not hold'}** here (criterion: ≥ 90% of the gain).")
    single = table[(table["mode"] == "lora") & ~table["group"].isin(["crucial", "all"])]
    if not single.empty:
        best = single.sort_values("gain_per_kparam", ascending=False)
        order = ", ".join(f"{r.group} ({r.gain_per_kparam:.3f})" for r in best.itertuples())
        lines.append(f"- Layer groups by LoRA gain per 1k trained parameters (dB): {order}.")
        top = set(best.head(len(CRUCIAL_GROUPS))["group"])
        lines.append(f"- Top {len(CRUCIAL_GROUPS)} by that measure: {', '.join(sorted(top))}; overlap with the paper's set: "
                     f"{', '.join(sorted(top & set(CRUCIAL_GROUPS))) or 'none'}.")
    return lines


def write_layer_report(pairs: list[tuple[str, RunRecord]], dest: Path, title: str, notes: dict[str, Any]) -> pd.DataFrame:
    table = analyse(pairs)
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write_text(dest / "layers.csv", table.to_csv(index=False))
    fmt = table.copy()
    for c in ("psnr", "gain_db"):
        fmt[c] = fmt[c].map("{:.2f}".format)
    fmt["params"] = fmt["params"].map("{:,.0f}".format)
    fmt["seconds"] = fmt["seconds"].map("{:.1f}".format)
    fmt["gain_per_kparam"] = fmt["gain_per_kparam"].map("{:.4f}".format)
    fmt["gain_per_second"] = fmt["gain_per_second"].map("{:.4f}".format)
    md = [f"# {title}", "", "Each row fine-tunes one layer group alone from the base model (LoRA or all its weights); "
          "gain = test PSNR vs teacher minus the zero-shot base's, averaged over concepts.", "",
          fmt.to_markdown(index=False), "", "## Verdict", "", *verdict(table), "",
          "## Settings", "", *[f"- {k}: {v}" for k, v in notes.items()], ""]
    atomic_write_text(dest / "layers.md", "\n".join(md))
    return table
