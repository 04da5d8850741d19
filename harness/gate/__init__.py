"""Kernel regression gate: kernel registry, count mode (instructions), wall mode (timings), baselines.

`kernels` defines each benchmarked kernel once (shared with the pytest-benchmark suite) and
`injection` makes one do real extra work, to test the gate. Count mode: `counting` runs the
kernels under callgrind in a `count_worker` child, switching instrumentation on around their
calls through `callgrind`'s client requests; `count_record` reads and writes its JSON and
`count_compare` judges instructions per call. Wall mode: `timing` measures the kernels
interleaved with the calibration workloads of `calibration`, `stats` and `compare` decide
regression or not, and `record` reads and writes its JSON. `table` renders both modes' verdicts;
`command` wires them into `lalm-bench gate` (`harness.commands.gate`).
"""
