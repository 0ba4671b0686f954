from e2gan_bench.cli import entry

entry()
