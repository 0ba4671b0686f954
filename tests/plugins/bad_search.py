"""Rank searches that return what no search may return (the corpus of bad plugin outputs)."""


def unknown_layer(ctx):
    return {**{t: 2 for t in ctx.targets}, "no.such.layer": 2}


def rank_zero(ctx):
    return {t: 0 for t in ctx.targets}


def not_an_int(ctx):
    return {t: 2.5 for t in ctx.targets}


def a_bool(ctx):
    return {t: True for t in ctx.targets}


def too_big(ctx):
    return {t: 4096 for t in ctx.targets}


def a_list(ctx):
    return list(ctx.targets)


def empty(ctx):
    return {}


not_callable = 42
