"""The benchmark harness: clients, load generators, runner, analysis, report and the VM layer."""
