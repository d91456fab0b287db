"""`bench verify`: the conformance table (cases), its runner (suite), protocol surface checks, the table."""
