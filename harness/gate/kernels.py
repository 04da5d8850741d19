"""The kernels that matter, defined once: name -> setup(device) -> zero-argument callable.

Both the pytest-benchmark suite (`tests/benchmarks/`) and `lalm-bench gate` build kernels
from this registry, so a shape is written in exactly one place. Each setup allocates its
inputs (seeded) and returns a callable that runs the kernel once on them in inference mode;
it does not synchronise the device (callers time whole batches of calls, then synchronise).
Kernels that need optional code (CUDA-only extensions, mamba-ssm) say why they cannot run
instead of failing at import time.

An injected regression for testing the gate (real extra work, `harness.gate.injection`) is
applied by `build` only; `models/` knows nothing of it.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch
import torch.nn.functional as F

from harness.errors import UserError
from harness.gate.injection import injected_work, with_extra_work

KernelFn = Callable[[], object]
Check = Callable[[torch.device], "str | None"]


@dataclass(frozen=True)
class Kernel:
    """One benchmarked kernel at one fixed shape.

    `setup(device)` returns the callable to time; `check(device)` says why it cannot run
    there (None when it can). `copy_weight`: how much the kernel's speed follows the memory
    copy rather than the matmul calibration, the exponent w of its unit matmul^(1-w) * copy^w
    (`harness.gate.timing.calibration_unit`).
    """

    name: str
    shape: str
    setup: Callable[[torch.device], KernelFn]
    check: Check = lambda device: None
    copy_weight: float = 0.0


# The tiny LALM forwards read megabytes of weights per call, beyond a core's L2, so they slow
# down with the machine's memory system while a sub-L2 kernel does not. Over 30 gate sessions on
# a 2-core VM in which the copy's time wandered 1.1-1.8x (other tenants of the host), their
# times followed the copy with fitted weights 0.21-0.35 (correlation 0.8) and every other
# kernel's with -0.06-0.08; one shared weight (0.25) under-corrected the former and pushed the
# latter's ratios down by up to 10%, hiding a 25% slowdown. `scripts/gate_trials.py` prints the
# fit for every kernel, to re-check on another machine.
MODEL_COPY_WEIGHT = 0.3


# --- availability checks ---------------------------------------------------------------------

def _needs_module(module: str) -> Check:
    def check(device: torch.device) -> str | None:
        try:
            importlib.import_module(module)
        except ImportError as err:
            return f"{module} not importable ({err})"
        return None

    return check


def _on(device_type: str, also: Check = lambda device: None) -> Check:
    def check(device: torch.device) -> str | None:
        return f"runs on {device_type} only" if device.type != device_type else also(device)

    return check


def _mamba_ssm(device: torch.device) -> str | None:
    from models.ops.scan_cuda import mamba_ssm_available

    return None if mamba_ssm_available() else "mamba-ssm is not installed"


# --- inputs ----------------------------------------------------------------------------------

def _randn(*shape: int, device: torch.device, gen: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, device=device) * scale


def _generator(device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(0)


def _inference(fn: Callable[[], object]) -> KernelFn:
    """`fn` run under inference mode: no autograd bookkeeping, as in benchmarks of forward passes."""

    def run() -> object:
        with torch.inference_mode():
            return fn()

    return run


# --- dense ops at the widths of the small presets ------------------------------------------

def _matmul(device: torch.device) -> KernelFn:
    """(128, 512) @ (512, 1024) float32: an LM MLP projection over 128 tokens (~1.3 ms on one core)."""
    gen = _generator(device)
    x, w = _randn(128, 512, device=device, gen=gen), _randn(512, 1024, device=device, gen=gen)
    return _inference(lambda: x @ w)


# 256 x 512 floats: in and out stay within a 2 MiB L2; one size up, oneDNN falls off a cliff
# (4x slower warm, 4x again after a cache flush), which would measure the cache, not the kernel.
CONV_BATCH, CONV_CHANNELS, CONV_LENGTH, CONV_WIDTH = 1, 256, 512, 4


def _conv1d_inputs(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = _generator(device)
    x = _randn(CONV_BATCH, CONV_CHANNELS, CONV_LENGTH, device=device, gen=gen)
    weight = _randn(CONV_CHANNELS, CONV_WIDTH, device=device, gen=gen)
    bias = _randn(CONV_CHANNELS, device=device, gen=gen)
    return x, weight, bias


def _conv1d_torch(device: torch.device) -> KernelFn:
    """Mamba's causal depthwise conv1d as the models run it (`models.ops.causal_conv`), through
    PyTorch's grouped conv1d: x (1, 256, 512), weight (256, 4)."""
    from models.ops.causal_conv import causal_conv1d

    x, weight, bias = _conv1d_inputs(device)
    return _inference(lambda: causal_conv1d(x, weight, bias))


def _conv1d_cuda(device: torch.device) -> KernelFn:
    """The same causal depthwise conv1d through the `causal_conv1d` CUDA extension."""
    from causal_conv1d import causal_conv1d_fn

    x, weight, bias = _conv1d_inputs(device)
    return _inference(lambda: causal_conv1d_fn(x, weight, bias))


def _sdpa(device: torch.device) -> KernelFn:
    """Causal scaled-dot-product attention, q/k/v (1, 8, 256, 64) float32 (LLaMA prefill)."""
    gen = _generator(device)
    q, k, v = (_randn(1, 8, 256, 64, device=device, gen=gen) for _ in range(3))
    return _inference(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))


# --- the selective scan, per backend setting -------------------------------------------------

# A Mamba layer (d_inner 256, d_state 16) over 64 tokens: short enough that the sequential
# reference backend (one step per token) stays near 2 ms a call, well inside a time slice.
SCAN_B, SCAN_D, SCAN_L, SCAN_N = 1, 256, 64, 16


def _selective_scan(setting: str) -> Callable[[torch.device], KernelFn]:
    """Mamba's scan (with D skip, z gate, delta bias, softplus) through backend `setting`."""

    def setup(device: torch.device) -> KernelFn:
        from models.ops.selective_scan import selective_scan

        gen = _generator(device)
        u, z = (_randn(SCAN_B, SCAN_D, SCAN_L, device=device, gen=gen) for _ in range(2))
        delta = _randn(SCAN_B, SCAN_D, SCAN_L, device=device, gen=gen, scale=0.5)
        A = -(torch.rand(SCAN_D, SCAN_N, generator=gen, device=device) + 0.5)  # decaying state
        B, C = (_randn(SCAN_B, SCAN_N, SCAN_L, device=device, gen=gen) for _ in range(2))
        D, delta_bias = (_randn(SCAN_D, device=device, gen=gen) for _ in range(2))
        return _inference(lambda: selective_scan(u, delta, A, B, C, D, z, delta_bias, True, False, setting))

    return setup


# --- the audio front end and the models ------------------------------------------------------

FBANK_SAMPLES = 32000  # 2 s at 16 kHz


def _fbank(device: torch.device) -> KernelFn:
    """Kaldi log-mel fbank of 2 s of 16 kHz audio, (1, 32000) -> (1, 198, 128)."""
    from models.audio import Fbank

    module = Fbank().to(device)
    wave = _randn(1, FBANK_SAMPLES, device=device, gen=_generator(device))
    return _inference(lambda: module(wave))


MODEL_AUDIO_SAMPLES = 16000  # 1 s of audio: 100 fbank frames, padded to 128, 4 audio tokens
MODEL_PROMPT_TOKENS = 8


def _model_inputs(variant: str, device: torch.device):
    """A tiny LALM and its phase inputs: wave (1, 16000) and prompt ids (1, 8)."""
    from harness.measure.chain import PhaseInputs
    from models import build

    model = build(variant, "tiny", device=device)
    gen = _generator(device)
    wave = _randn(1, MODEL_AUDIO_SAMPLES, device=device, gen=gen, scale=0.1)
    ids = torch.randint(0, model.lm.vocab_size, (1, MODEL_PROMPT_TOKENS), generator=gen, device=device)
    return model, PhaseInputs(wave, ids, new_tokens=1)


def _lalm_forward(variant: str) -> Callable[[torch.device], KernelFn]:
    """Waveform -> fbank -> encoder -> projector + LM prefill: next-token logits of a tiny LALM.
    Each call runs the whole phase chain afresh (a new chain holds no phase's output)."""

    def setup(device: torch.device) -> KernelFn:
        from harness.measure.chain import PhaseChain

        model, inputs = _model_inputs(variant, device)
        return _inference(lambda: PhaseChain(model, inputs).output("prefill")[0])

    return setup


def _decode_step(variant: str) -> Callable[[torch.device], KernelFn]:
    """One greedy decode step of the tiny LM after a prefill of 4 audio + 8 prompt tokens.

    A KV cache grows by one position per step; it is cropped back after each step so every
    call decodes at the same position. A Mamba state has a fixed size and needs nothing.
    """

    def setup(device: torch.device) -> KernelFn:
        from harness.measure.chain import PhaseChain

        model, inputs = _model_inputs(variant, device)
        chain = PhaseChain(model, inputs)
        with torch.inference_mode():
            _, cache = chain.prefilled()
            decode = chain.call("decode")  # steps the prefill's own cache, cropped back below
        grows = model.lm.family.attention  # a KV cache; an SSM's conv + SSM state is fixed-size

        def step() -> object:
            out, _ = decode()
            if grows:
                cache.crop(-1)  # negative: drop the last position (old and new transformers alike)
            return out

        return _inference(step)

    return setup


_MODELS = "models"
# The variants whose kernels the committed count baseline holds: a variant added here needs the
# baseline refreshed in the same change. The decode step is the LM's: one variant each for LLaMA
# and Mamba. Mamba-2 is not gated: there is no baseline for it yet, and its SSD runs transformers'
# chunked torch code on the CPU, not the project's scan kernel, so its count would guard
# transformers rather than this project.
GATED_VARIANTS = ("ast+llama", "dass+mamba", "dass+llama", "ast+mamba")
DECODE_VARIANTS = ("ast+llama", "ast+mamba")
_KERNELS: tuple[Kernel, ...] = (
    Kernel("matmul", "(128,512)@(512,1024) f32", _matmul),
    Kernel("conv1d", "causal depthwise x(1,256,512) w(256,4) f32", _conv1d_torch),
    Kernel(
        "conv1d[causal_conv1d]",
        "causal depthwise x(1,256,512) w(256,4) f32",
        _conv1d_cuda,
        _on("cuda", _needs_module("causal_conv1d")),
    ),
    Kernel("sdpa", "causal q,k,v(1,8,256,64) f32", _sdpa),
    Kernel("fbank", "wave(1,32000) -> (1,198,128)", _fbank, _needs_module("models.audio")),
    *(
        Kernel(f"selective_scan[{setting}]", "u(1,256,64) n=16 +D,z,bias,softplus f32", _selective_scan(setting), check)
        for setting, check in (
            ("reference", _needs_module("models.ops.selective_scan")),
            ("cpu", _on("cpu", _needs_module("models.ops.selective_scan"))),
            ("cuda", _on("cuda", _needs_module("models.ops.selective_scan"))),
        )
    ),
    *(
        Kernel(f"lalm_forward[{variant}]", "tiny, wave(1,16000) + prompt(1,8) -> logits", _lalm_forward(variant),
               _needs_module(_MODELS), copy_weight=MODEL_COPY_WEIGHT)
        for variant in GATED_VARIANTS
    ),
    *(
        Kernel(f"decode_step[{variant.partition('+')[2]}]", "tiny, 1 token after 4 audio + 8 prompt tokens",
               _decode_step(variant), _needs_module(_MODELS))
        for variant in DECODE_VARIANTS
    ),
)

KERNELS: dict[str, Kernel] = {k.name: k for k in _KERNELS}


def available(device: torch.device) -> list[Kernel]:
    """The registered kernels that can run on `device`, in registry order."""
    return [k for k in KERNELS.values() if k.check(device) is None]


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so a timer read afterwards covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def injected(env: dict[str, str] | None = None) -> dict[str, Fraction]:
    """The injected extra work, {kernel: factor}, from the environment (see `harness.gate.injection`)."""
    return injected_work(list(KERNELS), env)


def build(name: str, device: torch.device | str = "cpu") -> KernelFn:
    """The ready-to-call kernel `name` on `device`, with any injected extra work applied."""
    if name not in KERNELS:
        raise UserError(f"unknown kernel {name!r}; known: {', '.join(KERNELS)}")
    device = torch.device(device)
    kernel = KERNELS[name]
    reason = kernel.check(device)
    if reason is not None:
        raise UserError(f"kernel {name!r} is unavailable on {device}: {reason}")
    fn = kernel.setup(device)
    factor = injected().get(name)
    return fn if factor is None else with_extra_work(fn, factor)
