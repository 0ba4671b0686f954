"""The regression gate between two result sets: sides, paired comparison, tolerances and verdict."""
