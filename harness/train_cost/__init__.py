"""The `train_step` phase: one fine-tuning step under the meters (`step`), its closed-form FLOPs
(`analytic`), the largest batch that fits (`max_batch`), and what a sweep point calls (`workload`).
The suite's `[measure.train]` section is `harness.train_settings`."""
