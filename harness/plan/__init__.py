"""`lalm-bench plan`: predict a suite's memory and time per point before running it.

`specs` names the devices (datasheets, or this machine measured), `costs` gives each point's
closed forms (FLOPs, bytes moved, weights, working memory per phase), `calibrate` fits each
phase's efficiency on measured runs, `predict` puts them together per point.
"""
