"""A rank-search variant from user code, as a user would write it (used by the tests)."""


def rank_one_everywhere(ctx):
    """Deliberately bad: rank 1 on every layer."""
    return {t: 1 for t in ctx.targets}


def out_heavy(ctx):
    """All the budget on the output projection, rank 1 elsewhere."""
    pattern = {t: 1 for t in ctx.targets}
    for t in ctx.groups.get("out", []):
        pattern[t] = 8
    ctx.log.append({"note": "out-heavy"})
    return pattern
