"""Training cost: the closed-form FLOPs of one fine-tuning step and the largest batch that fits."""
