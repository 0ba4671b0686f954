"""The paper's claims and their verdicts from result stores (``e2gan-bench claims``): the claims as data
(:mod:`.paper`), the checks that decide them (:mod:`.checks`: orderings, non-inferiority, cost ratios, on the
statistics of :mod:`e2gan_bench.report.stats`), and the table built from stores (:mod:`.table`)."""

from e2gan_bench.report.claims.checks import FAILS, HOLDS, INCONCLUSIVE, NO_DIFF, NOT_MEASURED
from e2gan_bench.report.claims.paper import CLAIMS, PAPER, VERDICTS, Claim
from e2gan_bench.report.claims.table import claims_table, evaluate, latency_rows, load_stores, to_json, to_markdown

__all__ = ["CLAIMS", "FAILS", "HOLDS", "INCONCLUSIVE", "NO_DIFF", "NOT_MEASURED", "PAPER", "VERDICTS", "Claim",
           "claims_table", "evaluate", "latency_rows", "load_stores", "to_json", "to_markdown"]
