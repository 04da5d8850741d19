"""The training recipe: LTU-style stages over the same instruction-following data.

Stage 1 trains the projector alone, so the LM learns to read audio tokens before anything else
moves; stage 2 trains encoder, projector and LM together (the LM through LoRA adapters when
`lora` is set, as LTU does for a pretrained LLaMA; fully for LMs trained from scratch).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from models.errors import InputError

COMPONENTS = ("encoder", "projector", "lm")
# The instruction alone, then the answer. Audio tokens come first, so the prompt's length is
# the distance the LM must learn to look back over: with LTU's "### Instruction: ... ###
# Response:" framing (60 byte tokens) tiny LMs trained from scratch took far longer to read the
# audio than with the question alone (29 tokens). Any template with "{question}" can be given.
PROMPT_TEMPLATE = "{question}\n"


def format_prompt(question: str, template: str = PROMPT_TEMPLATE) -> str:
    if "{question}" not in template:
        raise InputError(f"prompt template {template!r} has no {{question}} field")
    return template.replace("{question}", question)


@dataclass(frozen=True)
class Stage:
    name: str
    trainable: tuple[str, ...]  # subset of COMPONENTS
    steps: int
    lr: float
    lora: bool = False  # train the LM through LoRA adapters instead of all its weights

    def __post_init__(self) -> None:
        unknown = set(self.trainable) - set(COMPONENTS)
        if unknown or not self.trainable:
            raise InputError(f"stage {self.name!r}: trainable parts must be a non-empty subset of {COMPONENTS}, got {self.trainable}")
        if self.steps < 0 or self.lr <= 0:
            raise InputError(f"stage {self.name!r}: steps must be >= 0 and lr > 0, got {self.steps}, {self.lr}")


@dataclass(frozen=True)
class Recipe:
    stages: tuple[Stage, ...]
    batch_size: int = 16
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05  # of each stage's steps, linear from 0
    min_lr_fraction: float = 0.1  # cosine decay ends at this fraction of the stage's lr
    grad_clip: float = 1.0
    seed: int = 0
    lora_rank: int = 8
    lora_alpha: int = 16
    spec_augment: bool = False  # random time/frequency masks on the fbank (training only)
    prompt_template: str = PROMPT_TEMPLATE

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {self.batch_size}")
        format_prompt("", self.prompt_template)  # fails now, not after the model is built

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def to_json(self) -> dict:
        return asdict(self)


def ltu_recipe(steps: int, lr: float = 1e-3, projector_fraction: float = 0.05, lora: bool = False, **options) -> Recipe:
    """Stage 1 (projector only) for `projector_fraction` of `steps`, stage 2 (everything) for the rest."""
    if steps < 1:
        raise InputError(f"training steps must be >= 1, got {steps}")
    first = int(round(steps * projector_fraction))
    return Recipe(
        stages=(
            Stage("projector", ("projector",), first, lr),
            Stage("all", COMPONENTS, steps - first, lr, lora=lora),
        ),
        **options,
    )
