"""`lalm-bench show` at a narrow terminal: the point's identifying columns keep their width."""
from __future__ import annotations

from harness.cli import main
from harness.report.synthetic import SyntheticSuite, write_run

SUITE = SyntheticSuite(variants=("ast+llama", "dass+mamba"), lengths=(5, 300), batches=(1,), tasks=False,
                       train=False, oom_from={"ast+llama": 300}, profile_seconds=())


def test_at_100_columns_variant_batch_audio_and_status_are_whole(tmp_path, monkeypatch, capsys):
    run = write_run(tmp_path / "run", SUITE)
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["show", str(run), "--phase", "encoder"]) == 0
    lines = capsys.readouterr().out.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    bottom = next(i for i, line in enumerate(lines) if line.startswith("└"))
    table = lines[top:bottom + 1]
    assert all(len(line) <= 100 for line in table)
    header = [c.strip() for c in [line for line in table if line.startswith("┃")][-1].strip("┃").split("┃")]
    columns = [header.index(name) for name in ("variant", "batch", "audio s", "status")]
    cells = [[c.strip() for c in line.strip("│").split("│")] for line in table if line.startswith("│")]
    points = {tuple(row[i] for i in columns) for row in cells if row[0]}
    assert points >= {("ast+llama", "1", "300", "oom"), ("dass+mamba", "1", "300", "ok")}
