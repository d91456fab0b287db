"""The benchmark harness, one subpackage per stage of the data path (docs/ARCHITECTURE.md):

    clients   one LibraryClient interface per protocol + the measurement hook
    load      workloads, locust users, open-model and native load, per-window metrics, target processes
    run       the matrix, the run loop, one cell, the manifest, cells in guests      -> results/<run_id>/
    analysis  raw files -> tidy table -> comparisons; `bench compare`
    report    tidy table + raw files -> report.html
    calibrate, micro, vm, codegen   beside the path: load generators compared, micro-benchmarks,
              libvirt guests, generated contract code

Leaf modules: paths, rawfiles, rundir (the run directory's layout and index), thresholds (the measurement
rules' numbers), options (shared CLI options), errors (the exception tree), cli (the `bench` command).
"""
