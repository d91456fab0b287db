"""From raw files to numbers: the tidy table, comparisons with their statistics, and `bench compare`."""
