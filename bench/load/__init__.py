"""Load generation: what a simulated user does (workload, scenarios), how load is offered (locust users for
the closed model, the open-model scheduler, native tools), and what is measured around it (per-operation
HdrHistograms, CPU and steal per window, bytes on the wire, the loopback floor), plus starting and placing
target processes."""
