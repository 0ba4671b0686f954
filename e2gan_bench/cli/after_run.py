"""What `run` does with the suite's runs once they are in the store: ``--save-outputs DIR`` (PNG folders of the
outputs and targets, `harness/export.py`) and ``--mlflow`` / ``--mlflow-uri`` (MLflow tracking,
`harness/tracking.py`). Both are checked before anything runs, and act on every run of the suite — computed now
or found in the store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from e2gan_bench.cli.app import console

if TYPE_CHECKING:
    from e2gan_bench.config import Suite
    from e2gan_bench.harness.spec import RunSpec

SaveOutputsOpt = Annotated[Optional[Path], typer.Option(
    "--save-outputs", help="Also write the student outputs and teacher targets on the test split as PNG folders "
    "(DIR/<concept>/{source,teacher}/, DIR/<concept>/<method>/seed<k>/, same file names; DIR/manifest.json), "
    "regenerated from the stored artifacts — runs found in the store included, nothing retrained.")]
MlflowOpt = Annotated[bool, typer.Option(
    "--mlflow", help="Log every run (computed or found in the store) to MLflow: one MLflow run per run key, not "
    "duplicated on a re-run. Needs the extra: pip install 'e2gan-bench\\[mlflow]'.")]  # \\[: not rich markup
MlflowUriOpt = Annotated[Optional[str], typer.Option(
    "--mlflow-uri", help="MLflow tracking URI or local folder (implies --mlflow; default: OUT/mlruns, a local "
    "file store).")]


@dataclass
class AfterRun:
    save_outputs: Path | None
    tracker: Any  # harness.tracking.Tracker, or None

    @classmethod
    def open(cls, out: Path, save_outputs: Path | None, mlflow: bool, mlflow_uri: str | None) -> AfterRun:
        """Check the options (a bad folder, a missing extra or an unusable URI: one line, exit 2, nothing run)."""
        if save_outputs is not None:
            from e2gan_bench.harness.export import check_dest

            check_dest(save_outputs)
        tracker = None
        if mlflow or mlflow_uri is not None:
            from e2gan_bench.harness.tracking import Tracker, default_uri

            tracker = Tracker(mlflow_uri or default_uri(out))
        return cls(save_outputs, tracker)

    def __call__(self, suite: Suite, specs: list[RunSpec], out: Path) -> None:
        from e2gan_bench.harness.store import ResultsStore

        store = ResultsStore(out, readonly=True)  # only read: the export and the tracker write elsewhere
        if self.save_outputs is not None:
            from e2gan_bench.harness.export import export_outputs

            m = export_outputs(specs, store, out / "cache", self.save_outputs, suite=suite.name)
            console.print(f"outputs: {self.save_outputs} ({len(m['runs'])} run(s), {len(m['concepts'])} concept(s)"
                          + (f"; {len(m['skipped'])} skipped, see manifest.json" if m["skipped"] else "") + ")")
        if self.tracker is not None:
            counts = self.tracker.log_runs(specs, store)
            console.print(f"mlflow: {self.tracker.uri} — " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
