"""Meters: timing, memory, energy and state size, each returning `Measurement`s.

Meters know nothing of suites or the runner; `phases` runs an LALM's phases under them.
"""
