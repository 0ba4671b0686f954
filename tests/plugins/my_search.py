"""Rank-search variants from user code, as a user would write them (used by the tests and the README)."""

from e2gan_bench.plugins import Params, with_params


def rank_one_everywhere(ctx):
    """Deliberately bad: rank 1 on every layer."""
    return {t: 1 for t in ctx.targets}


class OutHeavyParams(Params):
    rank: int = 8  # the output projection's rank


@with_params(OutHeavyParams)
def out_heavy(ctx):
    """All the budget on the output projection, rank 1 elsewhere."""
    pattern = {t: 1 for t in ctx.targets}
    for t in ctx.groups.get("out", []):
        pattern[t] = ctx.params.rank
    ctx.log.append({"note": "out-heavy"})
    return pattern
