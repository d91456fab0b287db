"""`bench run`: the matrix as data (plan), the run loop and its re-run policy, one cell's measurement, the
manifest, and cells inside guests. Writes only raw files (bench.rundir); tables and report come after."""
