"""Statistics in one place: units of replication and pairing (:mod:`.units`), intervals (:mod:`.intervals`),
tests, multiplicity and ranks (:mod:`.inference`), censored times to a target (:mod:`.censored`), which
numbers may be averaged together (one backend per metric: :mod:`.comparable`) and the regression-gate rule
(:mod:`.gate`). The leaderboard, effects, ``compare``, ``gate`` and the claims table all
take their numbers from here, so they agree by construction.

The rules, in one paragraph: the **concept is the unit** (seeds are averaged within a concept, then intervals
and tests run over concepts; with one concept, over its seeds, labelled as such); two methods are **paired** on
the (concept, seed) runs both have; intervals are two-sided Student-t over units, with a hierarchical bootstrap
(concepts, then seeds) beside them; many pairwise tests are **Holm-corrected**; times to a target are
**censored** at the run's budget when not reached (Kaplan–Meier medians, a sign test stratified by concept).
"""

from e2gan_bench.report.stats.censored import SoonerTest, km_median, method_median, sooner
from e2gan_bench.report.stats.inference import (
    ALPHA,
    Effect,
    Friedman,
    friedman,
    holm,
    paired_effect,
    pairwise,
    ranks_with_ties,
)
from e2gan_bench.report.stats.intervals import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    Interval,
    hierarchical_bootstrap,
    one_sided_p,
    t_interval,
)
from e2gan_bench.report.stats.units import CONCEPT, SEED, Units, concept_matrix, counts, paired, paired_records, units

__all__ = [
    "ALPHA", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "CONCEPT", "SEED", "Effect", "Friedman", "Interval",
    "SoonerTest", "Units", "concept_matrix", "counts", "friedman", "hierarchical_bootstrap", "holm", "km_median",
    "method_median", "one_sided_p", "paired", "paired_effect", "paired_records", "pairwise", "ranks_with_ties",
    "sooner", "t_interval", "units",
]
