"""One module per CLI sub-command.

Each module defines `NAME` (the sub-command), `HELP` (one line), `add_arguments(parser)` and
`run(args) -> int`. `harness.cli` discovers them, so adding a command touches one new file.
"""
