"""FLOPs that say what they missed: counted, analytic, their ratio, and the operators nobody counted.

Counting is `torch.utils.flop_counter.FlopCounterMode` over one forward call of a phase, with
formulas registered here for the operators it has none for and the models use:
- `aten._scaled_dot_product_flash_attention_for_cpu` (and its backward): what
  `scaled_dot_product_attention` becomes on CPU in torch 2.x. Without it every attention FLOP
  of a CPU run is silently dropped. Counted with torch's own CUDA attention formula, so CPU and
  CUDA counts of one model agree.
- `aten._fft_r2c` (the fbank's real FFT): 2.5 n log2 n per transform (`models.analytic.rfft`).
and one formula it has wrong, replaced in this module's counters only (`CORRECTED`):
- `aten.convolution_backward`: torch counts the weight gradient of a grouped convolution as if
  it were ungrouped, i.e. the group count times too much (DASS's depthwise 3x3, Mamba's
  depthwise conv1d); only training runs a convolution backward.
The selective scan registers its own formula where the op is defined (`models.ops`).

Convention (the same as `models.analytic`, which states it in full): one multiply-add = 2 FLOPs;
attention counted in full (the L x L square), causal or not; matrix products, convolutions,
attention, FFTs and the scan are counted; elementwise work is not.

So that nothing is dropped silently, a second dispatch mode sees every operator that actually
executes (after FlopCounterMode's decompositions) and sorts it into
- counted: it has a formula;
- MEMORY_OPS: no arithmetic (views, copies, concatenation, padding, indexing, creation);
- ELEMENTWISE_OPS: arithmetic left out by convention (pointwise math, activations, norms,
  softmax, reductions, pooling, interpolation); their output elements are totalled, so a reader
  can see the size of what the convention leaves out (a few FLOPs per element);
- uncounted: everything else. These are operators doing unknown work with no formula — a gap
  in the count, reported by name in every FLOP row's note and lowering `flop_coverage`.

`flop_coverage` = counted / analytic. About 1 means the count is complete; below 1, work ran
through an uncounted operator (or an analytic formula is wrong); above 1, the implementation
computes work the model does not need (padding, discarded conv outputs).

`module_breakdown` gives a per-module table with fvcore (jit tracing), with handles for the same
operators; fvcore counts a multiply-add as one, so its figures are doubled into this convention.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.utils.flop_counter as flop_counter
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula, sdpa_backward_flop_count, sdpa_flop_count
from torch.utils.module_tracker import ModuleTracker

from harness.measure.chain import PhaseChain, PhaseInputs
from harness.measure.measurement import Measurement
from models import analytic
from models.audio import SAMPLE_RATE
from models.lalm import LALM, AudioEncoding
from models.phases import CHAIN
from models.ops.selective_scan import fvcore_handles

aten = torch.ops.aten

# ---------------------------------------------------------------------------------------------
# Formulas for what FlopCounterMode misses


def _register_missing(ops: Sequence[torch._ops.OpOverloadPacket], formula: Callable) -> None:
    """Register `formula` for those of `ops` torch has no formula for (a later torch may add one)."""
    missing = [op for op in ops if op not in flop_counter.flop_registry]
    if missing:
        register_flop_formula(missing)(formula)


def _cpu_attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    """q (b, h, s_q, d), k/v (b, h_kv, s_k, d): Q K^T and A V, full square (see the convention)."""
    return sdpa_flop_count(query, key, value)


def _cpu_attention_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    """Scores recomputed, then gradients of A V and Q K^T: torch's CUDA backward formula."""
    return sdpa_backward_flop_count(grad_out, query, key, value)


def _rfft_flops(x_shape, dim, normalization, onesided, *args, out_shape=None, **kwargs) -> int:
    """Real FFT over `dim` of a tensor of `x_shape` (already zero-padded to the FFT size)."""
    n = math.prod(x_shape[d] for d in dim)
    return math.prod(x_shape) // n * analytic.rfft(n)


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                         _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """Each requested gradient (input, weight) of a convolution costs one forward of it, grouped or not."""
    return sum(bool(m) for m in output_mask[:2]) * flop_counter.conv_flop_count(x_shape, w_shape, grad_out_shape,
                                                                                 transposed)


# Formulas this module's counters use instead of torch's (FlopCounterMode's custom_mapping).
CORRECTED = {aten.convolution_backward: _conv_backward_flops}

_register_missing([aten._scaled_dot_product_flash_attention_for_cpu], _cpu_attention_flops)
_register_missing([aten._scaled_dot_product_flash_attention_for_cpu_backward], _cpu_attention_backward_flops)
_register_missing([aten._fft_r2c], _rfft_flops)

# ---------------------------------------------------------------------------------------------
# What is free or negligible, explicitly

MEMORY_OPS = frozenset({
    # views and aliases
    aten.view, aten._unsafe_view, aten.reshape, aten.view_as_real, aten.view_as_complex, aten.as_strided,
    aten.t, aten.transpose, aten.permute, aten.expand, aten.unsqueeze, aten.squeeze, aten.select, aten.slice,
    aten.unfold, aten.split, aten.split_with_sizes, aten.chunk, aten.unbind, aten.narrow, aten.alias,
    aten.detach, aten.detach_, aten.lift_fresh, aten.lift_fresh_copy, aten.real, aten.imag,
    # copies, concatenation, padding, reordering, gathering
    aten.clone, aten.contiguous, aten._to_copy, aten.copy_, aten.cat, aten.stack, aten.constant_pad_nd,
    aten.flip, aten.roll, aten.embedding, aten.index_select, aten.gather, aten.index, aten._unsafe_index,
    aten.masked_fill,
    aten.where, aten.tril, aten.triu,
    # creation
    aten.arange, aten.empty, aten.empty_like, aten.empty_strided, aten.new_empty, aten.new_empty_strided,
    aten.zeros, aten.zeros_like, aten.new_zeros, aten.ones, aten.ones_like, aten.new_ones, aten.full,
    aten.full_like, aten.new_full, aten.scalar_tensor, aten.fill_, aten.zero_, aten._local_scalar_dense,
})

ELEMENTWISE_OPS = frozenset({
    # pointwise arithmetic and math
    aten.add, aten.add_, aten.sub, aten.sub_, aten.rsub, aten.mul, aten.mul_, aten.div, aten.div_, aten.neg,
    aten.pow, aten.square, aten.sqrt, aten.rsqrt, aten.reciprocal, aten.exp, aten.expm1, aten.log, aten.log1p,
    aten.sin, aten.cos, aten.abs, aten.clamp, aten.clamp_min, aten.clamp_max, aten.addcmul,
    # activations, normalisation, softmax
    aten.gelu, aten.silu, aten.sigmoid, aten.tanh, aten.relu, aten.softplus, aten._softmax, aten._safe_softmax,
    aten._log_softmax, aten.native_layer_norm, aten._fused_rms_norm, aten.native_group_norm,
    aten.native_batch_norm, aten._native_batch_norm_legit_no_training,
    # reductions, comparisons, pooling, interpolation
    aten.mean, aten.sum, aten.cumsum, aten.amax, aten.amin, aten.max, aten.min, aten.argmax, aten.argmin,
    aten.eq, aten.ne, aten.gt, aten.ge, aten.lt, aten.le, aten.logical_and, aten.logical_or, aten.logical_not,
    aten.bitwise_not,
    aten._adaptive_avg_pool2d, aten.avg_pool2d, aten.upsample_bilinear2d, aten.upsample_nearest2d,
})


def _first_numel(out: object) -> int:
    if isinstance(out, torch.Tensor):
        return out.numel()
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0].numel()
    return 0


class _OperatorInventory(TorchDispatchMode):
    """Sorts every operator that executes into counted / memory / elementwise / uncounted.

    Entered *below* FlopCounterMode, it sees the operators after FlopCounterMode has decomposed
    composite ones, i.e. exactly the operators FlopCounterMode could or could not count.
    """

    def __init__(self, registry: Iterable) -> None:
        super().__init__()
        self.registry = set(registry)
        self.uncounted: Counter[str] = Counter()
        self.ignored_elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        packet = func._overloadpacket
        if packet in self.registry or packet in MEMORY_OPS:
            return out
        if packet in ELEMENTWISE_OPS:
            self.ignored_elements += _first_numel(out)
        else:
            self.uncounted[str(packet)] += 1
        return out


# ---------------------------------------------------------------------------------------------
# Counting


def _can_take_gradient(value: object) -> object:
    """`value` if a backward pass could reach it; else None (for the module tracker's eyes only)."""
    if not isinstance(value, torch.Tensor) or not value.requires_grad:
        return value
    return value if torch.is_grad_enabled() and (value.grad_fn is not None or value.is_leaf) else None


class _ForwardSafeModuleTracker(ModuleTracker):
    """torch's ModuleTracker (which FlopCounterMode uses for its per-module totals), shown only the
    tensors a backward pass could reach.

    The tracker hooks every module's inputs and outputs for the backward pass. A dependency may
    wrap a plain function in a module (transformers >= 5.25 does so for its hub kernels) and call
    it with a view of a parameter; under inference mode such a view requires grad but has no
    gradient function, and the tracker's hook registration raises ("'NoneType' object has no
    attribute 'next_functions'", "Expected gradient function to be set"). No gradient can ever
    reach such a tensor, so hiding it from the tracker loses nothing; the module call itself, and
    what it computes, are untouched. `tests/test_dependency_contracts.py` fails naming the hook if
    torch moves it.
    """

    def _fw_pre_hook(self, mod: nn.Module, input: object) -> None:
        super()._fw_pre_hook(mod, torch.utils._pytree.tree_map(_can_take_gradient, input))

    def _fw_post_hook(self, mod: nn.Module, input: object, output: object) -> None:
        super()._fw_post_hook(mod, input, torch.utils._pytree.tree_map(_can_take_gradient, output))


def flop_counter_mode() -> FlopCounterMode:
    """The FlopCounterMode every count uses: this module's corrected formulas, a tracker that any
    module (also a dependency's function-in-a-module) can pass through."""
    mode = FlopCounterMode(display=False, custom_mapping=CORRECTED)
    mode.mod_tracker = _ForwardSafeModuleTracker()
    return mode


@dataclass(frozen=True)
class FlopCount:
    """One call's FLOPs. by_op: operator -> FLOPs. by_module: module path -> FLOPs (nested modules
    include their children). uncounted_ops: operator -> calls, for operators with arithmetic and no
    formula. ignored_elements: output elements of ELEMENTWISE_OPS (left out by convention)."""

    total: int
    by_op: dict[str, int]
    by_module: dict[str, int]
    uncounted_ops: dict[str, int]
    ignored_elements: int = 0


class FlopCounter:
    """Context manager: `with FlopCounter() as c: out = fn()`, then `c.result` is a FlopCount."""

    def __init__(self) -> None:
        self.result: FlopCount | None = None

    def __enter__(self) -> FlopCounter:
        self._counter = flop_counter_mode()
        self._inventory = _OperatorInventory(self._counter.flop_registry)
        self._inventory.__enter__()
        self._counter.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._counter.__exit__(*exc)
        self._inventory.__exit__(*exc)
        counts = self._counter.get_flop_counts()
        by_module = {name: sum(ops.values()) for name, ops in counts.items() if name != "Global"}
        self.result = FlopCount(
            total=self._counter.get_total_flops(),
            by_op={str(op): n for op, n in counts.get("Global", {}).items()},
            by_module=by_module,
            uncounted_ops=dict(self._inventory.uncounted),
            ignored_elements=self._inventory.ignored_elements,
        )


def count_flops(fn: Callable[[], object]) -> FlopCount:
    """FLOPs of one call of `fn` (no arguments), with what was left out. Works on the meta device."""
    with torch.inference_mode(), FlopCounter() as counter:
        fn()
    return counter.result


# ---------------------------------------------------------------------------------------------
# Rows for the results table

COUNTER_SOURCE = "torch.FlopCounterMode"
ANALYTIC_SOURCE = "models.analytic"


def _uncounted_note(count: FlopCount) -> str:
    if not count.uncounted_ops:
        return "no uncounted operators"
    listed = ", ".join(f"{op} x{n}" for op, n in sorted(count.uncounted_ops.items()))
    return f"uncounted operators (no FLOP formula): {listed}"


def _largest(costs: analytic.Costs, top: int = 3) -> str:
    total = sum(costs.values()) or 1
    parts = sorted(costs.items(), key=lambda kv: -kv[1])[:top]
    return "largest: " + ", ".join(f"{name} {value / total:.0%}" for name, value in parts)


def flop_measurements(count: FlopCount, costs: analytic.Costs) -> list[Measurement]:
    """`flops`, `flops_analytic` and `flop_coverage` rows for one phase call.

    count: what FlopCounterMode counted; costs: `models.analytic.phase_flops` for the same call.
    """
    uncounted = _uncounted_note(count)
    share = f" (~{count.ignored_elements / count.total:.1%} of the count at one FLOP each)" if count.total else ""
    ignored = f"elementwise ops not counted by convention: {count.ignored_elements:,} output elements{share}"
    expected = sum(costs.values())
    coverage = count.total / expected if expected else math.nan
    return [
        Measurement("flops", float(count.total), "FLOP", source=COUNTER_SOURCE, note=f"{uncounted}; {ignored}"),
        Measurement("flops_analytic", float(expected), "FLOP", source=ANALYTIC_SOURCE, note=_largest(costs)),
        Measurement("flop_coverage", coverage, "1", source=f"{COUNTER_SOURCE} / {ANALYTIC_SOURCE}", note=uncounted),
    ]


def _not_counted(phase: str, exc: Exception, costs: analytic.Costs) -> list[Measurement]:
    """NaN counted rows with the reason, beside the analytic figure."""
    first = (str(exc).strip().splitlines() or [""])[0]
    reason = f"{phase} could not run under the counter: {type(exc).__name__}: {first}"
    expected = Measurement("flops_analytic", float(sum(costs.values())), "FLOP", source=ANALYTIC_SOURCE,
                           note=_largest(costs))
    return [Measurement.nan("flops", "FLOP", reason, COUNTER_SOURCE), expected,
            Measurement.nan("flop_coverage", "1", reason, f"{COUNTER_SOURCE} / {ANALYTIC_SOURCE}")]


def count_phase(chain: PhaseChain, phase: str) -> FlopCount:
    """What one call of `phase` counts, its inputs computed (uncounted) by the chain; the call's
    output is kept as the next phase's input."""
    with torch.inference_mode():
        call = chain.call(phase)
        with FlopCounter() as counter:
            out = call()
    chain.keep(phase, out)
    return counter.result


def measure_flops(
    lalm: LALM,
    wave: torch.Tensor,
    prompt_ids: torch.Tensor,
    phases: Sequence[str] = CHAIN,
    new_tokens: int = 1,
) -> dict[str, list[Measurement]]:
    """Count each phase once and compare with the analytic formulas: {phase: [flops, flops_analytic, flop_coverage]}.

    wave (B, S) at 16 kHz, prompt_ids (B, P), on the model's device — which may be "meta", where
    nothing is computed and only shapes flow (fast, any model size). The decode step is the first
    after the prefill (context = audio + prompt tokens); e2e is `generate` of `new_tokens`.
    """
    chain = PhaseChain(lalm, PhaseInputs(wave, prompt_ids, new_tokens))
    batch, audio_seconds = wave.shape[0], wave.shape[1] / SAMPLE_RATE
    results = {}
    for phase in phases:
        costs = analytic.phase_flops(lalm.spec, phase, batch, audio_seconds, prompt_ids.shape[1], new_tokens=new_tokens)
        try:
            count = count_phase(chain, phase)
        except Exception as exc:  # a phase that cannot run has no count; its formula still holds
            results[phase] = _not_counted(phase, exc, costs)
            continue
        results[phase] = flop_measurements(count, costs)
    return results


# ---------------------------------------------------------------------------------------------
# Per-module breakdown with fvcore


def _traced_shape(value) -> list[int]:
    return value.type().sizes()


def _fvcore_attention(inputs, outputs) -> int:
    """fvcore handle for aten::scaled_dot_product_attention, in multiply-adds (fvcore's unit)."""
    return sdpa_flop_count(*(_traced_shape(v) for v in inputs[:3])) // 2


def _fvcore_rfft(inputs, outputs) -> int:
    """fvcore handle for aten::fft_rfft(x, n, dim, norm), in multiply-adds."""
    shape = _traced_shape(inputs[0])
    dim = inputs[2].toIValue()
    n = inputs[1].toIValue() or shape[dim]
    return math.prod(shape) // shape[dim] * analytic.rfft(n) // 2


def _fvcore_op_handles() -> dict[str, Callable | None]:
    """fvcore's contraction handles plus ours. fvcore's defaults also count norms, pooling and
    interpolation; the convention here does not, so those are marked ignored (None) instead."""
    from fvcore.nn.jit_handles import (addmm_flop_jit, bmm_flop_jit, conv_flop_jit, einsum_flop_jit,
                                       linear_flop_jit, matmul_flop_jit)

    ignored = ("aten::batch_norm", "aten::group_norm", "aten::layer_norm", "aten::instance_norm",
               "aten::upsample_nearest2d", "aten::upsample_bilinear2d", "aten::adaptive_avg_pool1d",
               "aten::adaptive_avg_pool2d", "aten::grid_sampler")
    return {
        "aten::addmm": addmm_flop_jit,
        "aten::bmm": bmm_flop_jit,
        "aten::_convolution": conv_flop_jit,
        "aten::einsum": einsum_flop_jit,
        "aten::matmul": matmul_flop_jit,
        "aten::mm": matmul_flop_jit,
        "aten::linear": linear_flop_jit,
        "aten::scaled_dot_product_attention": _fvcore_attention,
        "aten::fft_rfft": _fvcore_rfft,
        **fvcore_handles(),
        **dict.fromkeys(ignored),
    }


@dataclass(frozen=True)
class ModuleBreakdown:
    """FLOPs per module path ("" is the whole call), in this module's convention (2 per multiply-add).

    unsupported_ops: operators fvcore saw with no handle (calls), less MEMORY_OPS and ELEMENTWISE_OPS.
    note: why nothing was counted, when tracing failed.
    """

    total: float
    by_module: dict[str, float]
    unsupported_ops: dict[str, int]
    note: str = ""


def module_breakdown(module: nn.Module, inputs: tuple) -> ModuleBreakdown:
    """fvcore's per-module FLOPs of `module(*inputs)`; a trace failure gives NaN and the reason."""
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(module, inputs)
    analysis.clear_op_handles().set_op_handle(**_fvcore_op_handles())
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    try:
        with torch.no_grad():
            by_module = {name: 2 * n for name, n in analysis.by_module().items()}
            unsupported = {op: n for op, n in analysis.unsupported_ops().items() if not _known_free(op)}
    except Exception as exc:  # jit tracing fails on some model code; the breakdown is optional
        first = (str(exc).strip().splitlines() or [""])[0]
        return ModuleBreakdown(math.nan, {}, {}, note=f"fvcore could not trace {type(module).__name__}: "
                                                      f"{type(exc).__name__}: {first}")
    return ModuleBreakdown(float(by_module.get("", 0)), by_module, unsupported)


def _known_free(traced_name: str) -> bool:
    """Whether a traced op name ("aten::gelu") is on MEMORY_OPS or ELEMENTWISE_OPS."""
    namespace, _, name = traced_name.partition("::")
    packet = getattr(getattr(torch.ops, namespace, None), name, None) if namespace == "aten" else None
    return packet in MEMORY_OPS or packet in ELEMENTWISE_OPS


class _PrefillLogits(nn.Module):
    """The prefill as a traceable module: (encoder hidden, prompt ids) -> last-position logits."""

    def __init__(self, lalm: LALM, num_tokens: int):
        super().__init__()
        self.projector, self.lm = lalm.projector, lalm.lm
        self.prefill = lalm.prefill
        self.num_tokens = num_tokens

    def forward(self, hidden: torch.Tensor, prompt_ids: torch.Tensor) -> torch.Tensor:
        return self.prefill(AudioEncoding(hidden, self.num_tokens), prompt_ids)[0]


class _LMPrefill(nn.Module):
    """The LM's prefill as a traceable module: embeddings (B, L, d) -> last-position logits (B, vocab)."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        return self.lm.prefill(embeds)[0]


def lm_breakdown(lm: nn.Module, embeds: torch.Tensor) -> ModuleBreakdown:
    """fvcore per-module FLOPs of an LM's prefill over `embeds` (B, L, d); modules named from "lm"."""
    return module_breakdown(_LMPrefill(lm), (embeds,))


def phase_breakdown(lalm: LALM, phase: str, wave: torch.Tensor, prompt_ids: torch.Tensor) -> ModuleBreakdown:
    """fvcore per-module FLOPs of one phase (fbank, encoder or prefill) on real (CPU/CUDA) inputs.

    The decode step takes a cache object, which jit tracing cannot take as an input: it gives NaN
    with that reason, as does any phase whose model code does not trace.
    """
    chain = PhaseChain(lalm, PhaseInputs(wave, prompt_ids, new_tokens=1))
    if phase == "fbank":
        return module_breakdown(lalm.frontend, (wave,))
    if phase == "encoder":
        with torch.inference_mode():
            feats = chain.output("fbank")
        return module_breakdown(lalm.encoder, (feats,))
    if phase == "prefill":
        with torch.inference_mode():
            enc = chain.output("encoder")
        return module_breakdown(_PrefillLogits(lalm, enc.num_tokens), (enc.hidden, prompt_ids))
    return ModuleBreakdown(math.nan, {}, {}, note=f"no fvcore breakdown for the {phase} phase: "
                                                  "its input is a cache object, which jit tracing cannot take")
