"""How LALMs are run and measured: CLI, suites, runner, meters, store, reports, gate, tasks."""
