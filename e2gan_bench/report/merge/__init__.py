"""One suite's runs merged from several results stores, and the checks that they may be averaged together."""
