"""One module per report section; `bench.report.build.SECTIONS` puts them in order."""
