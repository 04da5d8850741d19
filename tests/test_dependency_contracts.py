"""Where the project overrides a dependency's internals, these fail naming what moved.

- `models.ops.hf_mamba.ScanMambaMixer` replaces `transformers`' `MambaMixer.forward` and uses
  the mixer's submodules and the cache's conv/recurrent-state protocol;
- `harness.measure.flops` swaps FlopCounterMode's module tracker for one that overrides
  torch's `ModuleTracker._fw_pre_hook` / `_fw_post_hook`.
"""
from __future__ import annotations

import inspect

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.module_tracker import ModuleTracker
from transformers import MambaConfig, MambaForCausalLM
from transformers.models.mamba.modeling_mamba import MambaMixer

from harness.measure.flops import count_flops, flop_counter_mode
from models.ops.hf_mamba import use_scan_backend

MIXER_FORWARD = ["self", "hidden_states", "cache", "attention_mask", "kwargs"]
MIXER_ATTRIBUTES = ("in_proj", "conv1d", "x_proj", "dt_proj", "out_proj", "A_log", "D", "activation",
                    "time_step_rank", "ssm_state_size", "conv_kernel_size", "layer_idx")
CACHE_METHODS = ("get_conv_state", "get_recurrent_state", "is_recording_past", "update_conv_state",
                 "update_recurrent_state")


def test_mamba_mixer_forward_signature_is_the_one_the_override_replaces():
    found = list(inspect.signature(MambaMixer.forward).parameters)
    assert found == MIXER_FORWARD, f"transformers' MambaMixer.forward now takes {found}, not {MIXER_FORWARD}"


def test_mamba_mixer_and_its_cache_keep_what_the_override_uses():
    model = MambaForCausalLM(MambaConfig(hidden_size=32, num_hidden_layers=1, vocab_size=64, state_size=8)).eval()
    mixer = model.backbone.layers[0].mixer
    missing = [name for name in MIXER_ATTRIBUTES if not hasattr(mixer, name)]
    assert not missing, f"transformers' MambaMixer no longer has {missing}"
    with torch.no_grad():
        cache = model(torch.zeros(1, 4, dtype=torch.long), use_cache=True).cache
    missing = [name for name in CACHE_METHODS if not callable(getattr(cache, name, None))]
    assert not missing, f"transformers' Mamba cache ({type(cache).__name__}) no longer has {missing}"
    update = list(inspect.signature(cache.update_conv_state).parameters)
    assert update[:2] == ["conv_states", "layer_idx"], f"update_conv_state now takes {update}"


def test_the_overridden_mixer_decodes_like_transformers_own():
    torch.manual_seed(0)
    model = MambaForCausalLM(MambaConfig(hidden_size=32, num_hidden_layers=2, vocab_size=64, state_size=8)).eval()
    ids = torch.randint(0, 64, (1, 9), generator=torch.Generator().manual_seed(0))

    def prefill_then_step() -> torch.Tensor:
        with torch.no_grad():
            out = model(ids[:, :8], use_cache=True)
            return model(ids[:, 8:], cache=out.cache, use_cache=True).logits[:, -1]

    expected = prefill_then_step()
    use_scan_backend(model, "reference")
    torch.testing.assert_close(prefill_then_step(), expected, rtol=0, atol=1e-4)


def test_module_tracker_hooks_keep_the_signatures_the_override_extends():
    assert list(inspect.signature(ModuleTracker._fw_pre_hook).parameters) == ["self", "mod", "input"], (
        "torch's ModuleTracker._fw_pre_hook changed its signature")
    assert list(inspect.signature(ModuleTracker._fw_post_hook).parameters) == ["self", "mod", "input", "output"], (
        "torch's ModuleTracker._fw_post_hook changed its signature")
    assert isinstance(FlopCounterMode(display=False).mod_tracker, ModuleTracker), (
        "FlopCounterMode no longer keeps its module tracker in .mod_tracker")


class _Wrapped(nn.Module):
    """A plain function wrapped in a module, called with a view of another module's parameter."""

    def forward(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return x @ weight


class _UsesWrapped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.fn = _Wrapped()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, self.proj.weight.t())


def test_a_function_wrapped_in_a_module_is_counted_under_inference_mode():
    """What transformers >= 5.25 does with its hub-kernel helpers; torch's own tracker raises here."""
    model, x = _UsesWrapped(), torch.randn(3, 4)
    count = count_flops(lambda: model(x))
    assert count.total == 2 * 3 * 4 * 4
    assert count.by_module["_UsesWrapped.fn"] == count.total


def test_the_tracker_still_follows_a_backward_pass():
    model, x = _UsesWrapped(), torch.randn(3, 4, requires_grad=True)
    with flop_counter_mode() as mode:
        model(x).sum().backward()
    assert mode.get_total_flops() == 3 * (2 * 3 * 4 * 4)  # forward, input gradient, weight gradient
