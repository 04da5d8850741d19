"""The selective-scan op: every backend against the sequential reference, gradients, the op's
registrations (fake, autograd, FLOP formulas), and the Mamba LM running on it."""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import MambaConfig, MambaForCausalLM

from models.errors import InputError
from models.ops.hf_mamba import ScanMambaMixer, use_scan_backend
from models.ops.selective_scan import (
    fvcore_handles,
    resolve_backend,
    scan_flops,
    selective_scan,
    selective_state_update,
)
from models.ops.scan_cpu import BLOCK, LANES
from models.ops.scan_cuda import mamba_ssm_available


def scan_inputs(b, d, l, n, groups=0, D=True, z=True, bias=True, dtype=torch.float32, seed=0, requires_grad=False):
    """Random scan inputs in mamba-ssm's layouts. groups=0: B, C are (b, n, l); else (b, g, n, l)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0, shift=0.0, uniform=False):
        draw = torch.rand if uniform else torch.randn
        t = (draw(*shape, generator=g, dtype=torch.float64) * scale + shift).to(dtype)
        return t.requires_grad_(requires_grad)

    bc_shape = (b, groups, n, l) if groups else (b, n, l)
    return dict(
        u=rand(b, d, l),
        # dt > 0 and A < 0 with or without softplus and bias, so the state decays as in Mamba.
        delta=rand(b, d, l, scale=0.95, shift=0.05, uniform=True),
        A=rand(d, n, scale=-float(n), shift=-0.1, uniform=True),
        B=rand(*bc_shape),
        C=rand(*bc_shape),
        D=rand(d) if D else None,
        z=rand(b, d, l) if z else None,
        delta_bias=rand(d, scale=0.1, uniform=True) if bias else None,
    )


@contextlib.contextmanager
def torch_threads(threads: int):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def as_double(inputs):
    return {k: (None if v is None else v.detach().double()) for k, v in inputs.items()}


def rel_err(x: torch.Tensor, ref: torch.Tensor) -> float:
    return ((x.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def random_case(seed: int) -> tuple[dict, dict]:
    """Shape and options drawn from the ranges the op must cover."""
    rng = random.Random(seed)
    d = rng.randint(1, 64)
    shape = dict(b=rng.randint(1, 3), d=d, l=rng.randint(1, 300), n=rng.randint(1, 16))
    groups = rng.choice([0, 0] + [g for g in (1, 2, 4) if d % g == 0])
    opts = dict(groups=groups, D=rng.random() < 0.5, z=rng.random() < 0.5, bias=rng.random() < 0.5)
    flags = dict(delta_softplus=rng.random() < 0.5, return_last_state=rng.random() < 0.5)
    return dict(**shape, **opts), flags


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_float32_backends_match_the_float64_reference(seed, backend):
    case, flags = random_case(seed)
    inputs = scan_inputs(**case, seed=seed)
    ref = selective_scan(**as_double(inputs), **flags, backend="reference")
    if backend == "torch":  # the vectorised fallback, reachable on CPU through the op itself
        out = torch.ops.lalm.selective_scan(*inputs.values(), *flags.values(), "torch")
        out = out if flags["return_last_state"] else out[0]
    else:
        out = selective_scan(**inputs, **flags, backend=backend)
    outs, refs = (out, ref) if flags["return_last_state"] else ((out,), (ref,))
    for got, want in zip(outs, refs):
        assert got.shape == want.shape
        assert rel_err(got, want) <= 1e-5, (case, flags)
    assert outs[0].dtype == torch.float32


@pytest.mark.parametrize(
    "b, d, l, n, groups",
    [(1, 2 * LANES + 3, 2 * BLOCK + 7, 16, 0), (2, 4 * 50, BLOCK + 1, 4, 4), (1, 3 * 24, 3, 1, 3)],
    ids=["several-tiles-and-blocks", "groups-not-tile-aligned", "dass-like-state-1"],
)
def test_cpu_kernel_across_tile_and_block_edges(b, d, l, n, groups):
    inputs = scan_inputs(b, d, l, n, groups=groups)
    y, last = selective_scan(**inputs, delta_softplus=True, return_last_state=True, backend="cpu")
    y_ref, last_ref = selective_scan(**as_double(inputs), delta_softplus=True, return_last_state=True,
                                     backend="reference")
    assert rel_err(y, y_ref) <= 1e-5 and rel_err(last, last_ref) <= 1e-5


def _scan_in_child(inputs, expected, queue):
    queue.put(torch.equal(selective_scan(**inputs, backend="cpu"), expected))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_cpu_kernel_runs_in_a_forked_child():
    """A child forked after the kernel ran in the parent (whose thread pool it cannot use)."""
    inputs = scan_inputs(1, 3 * LANES, 20, 4)
    with torch_threads(2):
        expected = selective_scan(**inputs, backend="cpu")
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_scan_in_child, args=(inputs, expected, queue))
        child.start()
        child.join(timeout=60)
    assert child.exitcode == 0 and queue.get(timeout=1)


def test_last_state_continues_into_the_decode_step():
    """Scanning l steps then one state update equals the last output of scanning l + 1 steps."""
    inputs = scan_inputs(2, 12, 30, 5, groups=2, dtype=torch.float64)
    y_full = selective_scan(**inputs, delta_softplus=True, backend="cpu")
    head = {k: (v[..., :-1] if k in ("u", "delta", "z", "B", "C") else v) for k, v in inputs.items()}
    _, state = selective_scan(**head, delta_softplus=True, return_last_state=True, backend="cpu")
    step = {k: (v[..., -1] if k in ("u", "delta", "z", "B", "C") else v) for k, v in inputs.items()}
    y_step = selective_state_update(state, **step, delta_softplus=True, backend="cpu")
    torch.testing.assert_close(y_step, y_full[..., -1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("groups", [0, 2])
@pytest.mark.parametrize("backend", ["numba", "reference", "torch"])
def test_gradcheck_float64(groups, backend):
    inputs = scan_inputs(2, 4, 7, 3, groups=groups, dtype=torch.float64, seed=3, requires_grad=True)

    def scan(*tensors):
        return torch.ops.lalm.selective_scan(*tensors, True, True, backend)

    # Hundreds of tiny forward passes: extra torch threads only add synchronisation.
    with torch_threads(1):
        assert torch.autograd.gradcheck(scan, tuple(inputs.values()))


def test_gradcheck_float64_without_optional_inputs():
    inputs = scan_inputs(1, 3, 7, 2, D=False, z=False, bias=False, dtype=torch.float64, requires_grad=True)
    tensors = {k: v for k, v in inputs.items() if v is not None}
    assert torch.autograd.gradcheck(lambda *t: selective_scan(*t, backend="cpu"), tuple(tensors.values()))


def test_cpu_backward_matches_reference_gradients_in_float32():
    inputs = scan_inputs(2, 10, 60, 8, groups=2, requires_grad=True)
    ref_inputs = {k: (None if v is None else v.detach().double().requires_grad_()) for k, v in inputs.items()}
    grads = []
    for tensors, backend in ((inputs, "cpu"), (ref_inputs, "reference")):
        y, last = selective_scan(**tensors, delta_softplus=True, return_last_state=True, backend=backend)
        (y.sum() + last.square().sum()).backward()
        grads.append([t.grad for t in tensors.values()])
    for name, got, want in zip(inputs, *grads):
        assert rel_err(got, want) <= 1e-4, name


def test_tiny_model_trains_on_cpu():
    """A few SGD steps through the op lower the loss: the backward is usable for training."""
    torch.manual_seed(0)
    model = MambaForCausalLM(MambaConfig(hidden_size=32, num_hidden_layers=1, vocab_size=64, state_size=4))
    use_scan_backend(model, "cpu")
    ids = torch.randint(0, 64, (2, 24))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        loss = model(ids, labels=ids, use_cache=False).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert model.backbone.layers[0].mixer.A_log.grad.abs().sum() > 0


def test_op_registrations_pass_opcheck():
    """Schema, fake (meta) implementation, autograd registration and AOT tracing are consistent."""
    inputs = scan_inputs(2, 4, 5, 3, groups=2, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch.ops.lalm.selective_scan.default, (*inputs.values(), True, True, "numba"))
    step = {k: (v.detach()[..., 0] if k in ("u", "delta", "z", "B", "C") else v.detach()) for k, v in inputs.items()}
    state = torch.randn(2, 4, 3, dtype=torch.float64)
    torch.library.opcheck(torch.ops.lalm.selective_state_update.default, (state, *step.values(), True, "numba"))


def test_torch_compile_traces_the_op_whole():
    inputs = scan_inputs(1, 8, 16, 4)
    compiled = torch.compile(lambda **t: selective_scan(**t, delta_softplus=True, backend="cpu"),
                             backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(**inputs), selective_scan(**inputs, delta_softplus=True, backend="cpu"))


def test_flop_counter_uses_the_closed_form_on_meta_tensors():
    inputs = {k: (None if v is None else v.to("meta")) for k, v in scan_inputs(3, 32, 100, 16, groups=4).items()}
    with FlopCounterMode(display=False) as counter:
        y = selective_scan(**inputs, delta_softplus=True)
    assert y.shape == (3, 32, 100) and y.device.type == "meta"
    expected = scan_flops(3, 32, 100, 16, True, True, has_delta_bias=True, delta_softplus=True)
    assert counter.get_total_flops() == expected
    assert expected == 3 * 32 * 100 * (7 * 16 + 1 + 2 + 3 + 1 + 2)


def test_resolve_backend():
    assert resolve_backend("auto", "cpu") == "numba"
    assert resolve_backend("cpu", torch.device("cpu")) == "numba"
    assert resolve_backend("reference", "cpu") == "reference"
    assert resolve_backend("hf", "cpu") == "hf"
    assert resolve_backend("auto", "meta") == "torch"
    inputs = scan_inputs(1, 4, 6, 2)  # 'hf' only concerns the Mamba LM: the op itself runs as 'auto'
    torch.testing.assert_close(selective_scan(**inputs, backend="hf"), selective_scan(**inputs, backend="auto"))
    with pytest.raises(InputError, match="'cuda' needs a CUDA device"):
        resolve_backend("cuda", "cpu")
    with pytest.raises(InputError, match="unknown scan backend 'fast'"):
        resolve_backend("fast", "cpu")


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(u=torch.zeros(2, 8)), "u must be"),
        (dict(delta=torch.zeros(2, 8, 5)), "delta and z must match"),
        (dict(A=torch.zeros(8, 4, dtype=torch.complex64)), "A must be real"),
        (dict(B=torch.zeros(2, 3, 4, 10)), "B must be"),
        (dict(C=torch.zeros(2, 5, 10)), "C must be"),
        (dict(D=torch.zeros(7)), "D must be"),
    ],
)
def test_bad_shapes_are_input_errors(change, message):
    inputs = scan_inputs(2, 8, 10, 4)
    inputs.update(change)
    with pytest.raises(InputError, match=message):
        selective_scan(**inputs)


# ---------------------------------------------------------------------------------------------
# The Mamba LM on the op


def tiny_mamba(seed: int = 0) -> MambaForCausalLM:
    torch.manual_seed(seed)
    return MambaForCausalLM(MambaConfig(hidden_size=64, num_hidden_layers=2, vocab_size=256, state_size=16)).eval()


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_mamba_logits_match_transformers_path(backend):
    model = tiny_mamba()
    ids = torch.randint(0, 256, (2, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(ids, use_cache=False).logits
        assert use_scan_backend(model, backend) == resolve_backend(backend, "cpu")
        assert all(isinstance(layer.mixer, ScanMambaMixer) for layer in model.backbone.layers)
        got = model(ids, use_cache=False).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)


def test_mamba_prefill_then_decode_matches_full_sequence():
    model = tiny_mamba()
    ids = torch.randint(0, 256, (2, 40), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = model(ids, use_cache=False).logits  # transformers' own path
        use_scan_backend(model, "cpu")
        out = model(ids[:, :32], use_cache=True)
        steps = [out.logits[:, -1]]
        for t in range(32, 40):
            out = model(ids[:, t:t + 1], cache=out.cache, use_cache=True)
            steps.append(out.logits[:, -1])
    torch.testing.assert_close(torch.stack(steps, 1), full[:, 31:], rtol=0, atol=1e-4)


def test_mamba_keeps_weight_names_and_hf_restores_the_original_mixer():
    model = tiny_mamba()
    names = list(model.state_dict())
    use_scan_backend(model, "cpu")
    assert list(model.state_dict()) == names
    model.load_state_dict(tiny_mamba(seed=1).state_dict())  # a checkpoint still loads
    assert use_scan_backend(model, "hf") == "hf"
    assert all(type(layer.mixer).__name__ == "MambaMixer" for layer in model.backbone.layers)


def mamba_closed_form_flops(config: MambaConfig, batch: int, length: int) -> int:
    """Matmuls, the depthwise conv and the scan of one forward pass over `length` tokens."""
    h, e, n, r, k = (config.hidden_size, config.intermediate_size, config.state_size,
                     config.time_step_rank, config.conv_kernel)
    tokens = batch * length
    per_layer = 2 * tokens * (h * 2 * e + e * k + e * (r + 2 * n) + r * e + e * h)
    scan = scan_flops(batch, e, length, n, True, True, has_delta_bias=True, delta_softplus=True)
    return config.num_hidden_layers * (per_layer + scan) + 2 * tokens * h * config.vocab_size


def test_flop_counter_counts_the_mamba_scan():
    model = tiny_mamba()
    use_scan_backend(model, "cpu")
    ids = torch.randint(0, 256, (1, 512))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(ids, use_cache=False)
    counted = counter.get_total_flops()
    per_op = {str(op): flops for op, flops in counter.get_flop_counts()["Global"].items()}
    cfg = model.config
    assert per_op["lalm.selective_scan"] == cfg.num_hidden_layers * scan_flops(
        1, cfg.intermediate_size, 512, cfg.state_size, True, True, has_delta_bias=True, delta_softplus=True)
    assert abs(counted / mamba_closed_form_flops(cfg, 1, 512) - 1) <= 0.02


def test_fvcore_traces_the_mamba_lm_at_4096_tokens():
    from fvcore.nn import FlopCountAnalysis

    class Logits(torch.nn.Module):
        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, ids):
            return self.lm(ids, use_cache=False).logits

    model = tiny_mamba()
    use_scan_backend(model, "cpu")
    ids = torch.randint(0, 256, (1, 4096))
    analysis = FlopCountAnalysis(Logits(model), (ids,)).set_op_handle(**fvcore_handles())
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = analysis.by_operator()
    cfg = model.config
    scan = scan_flops(1, cfg.intermediate_size, 4096, cfg.state_size, True, True, has_delta_bias=True,
                      delta_softplus=True)
    assert by_op["selective_scan"] == cfg.num_hidden_layers * (scan // 2)  # fvcore's unit: multiply-adds


# ---------------------------------------------------------------------------------------------
# On a GPU: mamba-ssm's kernels through the op, within mamba-ssm's own test tolerances (its
# kernels are built with fast math: rtol 6e-4 / atol 2e-3 in float32, 3e-3 / 5e-3 in float16).

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
needs_kernel = pytest.mark.skipif(not mamba_ssm_available(), reason="selective_scan_cuda (mamba-ssm's CUDA build) "
                                  "does not import")
MAMBA_TOLERANCE = {torch.float32: dict(rtol=6e-4, atol=2e-3), torch.float16: dict(rtol=3e-3, atol=5e-3)}


def on_cuda(inputs: dict, dtype: torch.dtype = torch.float32) -> dict:
    """The inputs on the GPU; u, delta, B, C, z in `dtype` (A, D, delta_bias stay float32)."""
    low = ("u", "delta", "B", "C", "z")
    return {
        k: None if v is None else v.detach().to("cuda", dtype if k in low else v.dtype).requires_grad_(v.requires_grad)
        for k, v in inputs.items()
    }


@pytest.mark.gpu
@needs_cuda
@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("seed", range(4))
def test_cuda_backend_matches_reference(seed, dtype):
    case, flags = random_case(seed)
    inputs = on_cuda(scan_inputs(**case, seed=seed), dtype)
    ref = selective_scan(**{k: None if v is None else v.cpu().double() for k, v in inputs.items()}, **flags,
                         backend="reference")
    out = selective_scan(**inputs, **flags, backend="cuda")
    outs, refs = (out, ref) if flags["return_last_state"] else ((out,), (ref,))
    for got, want in zip(outs, refs):
        torch.testing.assert_close(got.cpu().double(), want, **MAMBA_TOLERANCE[dtype])


@pytest.mark.gpu
@needs_cuda
@needs_kernel
@pytest.mark.parametrize("groups", [0, 2])
def test_cuda_backward_matches_reference(groups):
    inputs = on_cuda(scan_inputs(2, 16, 300, 8, groups=groups, requires_grad=True))
    ref = {k: None if v is None else v.detach().cpu().double().requires_grad_() for k, v in inputs.items()}
    for tensors, backend in ((inputs, "cuda"), (ref, "reference")):
        selective_scan(**tensors, delta_softplus=True, backend=backend).square().sum().backward()
    tolerance = MAMBA_TOLERANCE[torch.float32]  # mamba-ssm allows up to 5x rtol, 10x atol on gradients
    for name in inputs:
        torch.testing.assert_close(inputs[name].grad.cpu().double(), ref[name].grad,
                                   rtol=5 * tolerance["rtol"], atol=10 * tolerance["atol"], msg=name)


@pytest.mark.gpu
@needs_cuda
@needs_kernel
def test_cuda_op_registrations_pass_opcheck():
    """The fake's shapes and strides (chunk states, contiguous last state) against the kernel's."""
    inputs = on_cuda(scan_inputs(2, 4, 2100, 3, groups=2, requires_grad=True))  # two chunks of the kernel
    torch.library.opcheck(torch.ops.lalm.selective_scan.default, (*inputs.values(), True, True, "mamba-ssm"))


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("absent", [(), ("D", "delta_bias")], ids=["all", "no-D-bias"])
def test_cuda_state_update_matches_the_torch_step(absent):
    inputs = on_cuda(scan_inputs(2, 32, 1, 16))
    step = {k: (v[..., 0] if k in ("u", "delta", "z", "B", "C") else v) for k, v in inputs.items()}
    step.update(dict.fromkeys(absent))
    state = torch.randn(2, 32, 16, device="cuda")
    expected_state = state.clone()
    expected = selective_state_update(expected_state, **step, delta_softplus=True, backend="reference")
    got = selective_state_update(state, **step, delta_softplus=True, backend="cuda")
    torch.testing.assert_close(got, expected, **MAMBA_TOLERANCE[torch.float32])
    torch.testing.assert_close(state, expected_state, **MAMBA_TOLERANCE[torch.float32])


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 2e-3), (torch.float16, 3e-2)], ids=["fp32", "fp16"])
def test_mamba_logits_match_transformers_on_cuda(dtype, atol):
    """ScanMambaMixer (prefill scan + decode steps) against transformers' own Mamba on the GPU."""
    model = tiny_mamba().to("cuda", dtype)
    ids = torch.randint(0, 256, (2, 40), generator=torch.Generator().manual_seed(2)).cuda()
    with torch.no_grad():
        full = model(ids, use_cache=False).logits.float()
        use_scan_backend(model, "cuda" if mamba_ssm_available() else "auto")
        torch.testing.assert_close(model(ids, use_cache=False).logits.float(), full, rtol=0, atol=atol)
        out = model(ids[:, :32], use_cache=True)
        steps = [out.logits[:, -1]]
        for t in range(32, 40):
            out = model(ids[:, t:t + 1], cache=out.cache, use_cache=True)
            steps.append(out.logits[:, -1])
    torch.testing.assert_close(torch.stack(steps, 1).float(), full[:, 31:], rtol=0, atol=atol)
