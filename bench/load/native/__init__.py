"""The native load engine: compiled generators driven by the harness (wrk, h2load from Debian's packages;
gload, the project's own Go generator built from Debian's Go packages), fed with requests captured from the
Python clients' encoders, their output turned into the same HdrHistograms as the Python engine's."""
