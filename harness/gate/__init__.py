"""Kernel-speed regression gate: kernel registry, interleaved timing, robust comparison, baselines.

`kernels` defines each benchmarked kernel once (shared with the pytest-benchmark suite),
`timing` measures them interleaved with the calibration workloads of `calibration`,
`stats` decides regression or not, `baseline` reads and writes the committed JSON, and
`table` renders the verdicts. `harness.commands.gate` wires them into `lalm-bench gate`.
"""
