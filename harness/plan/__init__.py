"""`lalm-bench plan`: predict a suite's memory and time per point before running it.

`specs` names the devices (datasheets, or this machine measured), `costs` gives each point's
closed forms (FLOPs, bytes moved by kind, weights, cache), `working_set` what each phase holds in
memory (a dry run on fake tensors, shared with `harness.forecast`), `calibrate` fits each phase's
cost per module and efficiencies on measured runs, `predict` puts them together per point.
"""
