"""Run transformers' Mamba LM (`MambaForCausalLM`) on the selective-scan op.

On CPU, transformers' own Mamba mixer scans with a Python loop over time steps on
(batch, channels, length, state) tensors; FLOP counters see almost none of it. `use_scan_backend`
swaps each `MambaMixer` for `ScanMambaMixer`, a subclass with the same parameters (so Hugging
Face weight names and checkpoints are unchanged) whose SSM stage is one `lalm::selective_scan`
call for a full sequence (prefill: the final conv window and SSM state go into the cache) and one
`lalm::selective_state_update` for a single cached token (decode). Projections and the cache
protocol are transformers' own; the causal conv is the project's (`models.ops.causal_conv`), since
transformers' conv helpers change form between releases.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers.cache_utils import Cache
from transformers.models.mamba.modeling_mamba import MambaMixer

from models.ops.causal_conv import causal_conv1d, causal_conv1d_step
from models.ops.selective_scan import resolve_backend, selective_scan, selective_state_update


def _zero_padding(hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """(b, l, d) with the positions where `attention_mask` (b, l) is 0 zeroed, so padding leaves no state."""
    if attention_mask is None:
        return hidden_states
    return (hidden_states * attention_mask[:, :, None]).to(hidden_states.dtype)


class ScanMambaMixer(MambaMixer):
    """`MambaMixer` whose scan runs on the registered op; `scan_backend` is the setting it uses."""

    scan_backend: str = "auto"

    def forward(
        self,
        hidden_states: torch.Tensor,
        cache: Cache | None = None,
        attention_mask: torch.LongTensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """(b, l, hidden) -> (b, l, hidden); with a cache holding this layer's state, l = 1 decodes."""
        seq_len, dtype, layer = hidden_states.shape[1], hidden_states.dtype, self.layer_idx
        conv_state = cache.get_conv_state(layer) if cache is not None else None
        ssm_state = cache.get_recurrent_state(layer) if cache is not None else None

        hidden_states = _zero_padding(hidden_states, attention_mask)
        x, gate = self.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)  # (b, d_inner, l) each

        conv_weight = self.conv1d.weight.squeeze(1)
        if conv_state is not None and seq_len == 1 and not cache.is_recording_past(layer):
            x = causal_conv1d_step(x, conv_state, conv_weight, self.conv1d.bias, activation=self.activation)
            # transformers >= 5.25 counts the tokens a cache has seen, and cannot see an in-place
            # conv step: it must be told, as its own mixer does.
            if hasattr(cache, "increase_count"):
                cache.increase_count(layer, 0)
        else:
            if cache is not None:  # prepends the cached window and stores the new one
                x = cache.update_conv_state(x, layer, conv_kernel_size=self.conv_kernel_size)
            x = causal_conv1d(x, conv_weight, self.conv1d.bias, activation=self.activation)[..., -seq_len:]

        x = _zero_padding(x.transpose(1, 2), attention_mask)  # (b, l, d_inner)
        dt, B, C = torch.split(self.x_proj(x), [self.time_step_rank, self.ssm_state_size, self.ssm_state_size], -1)
        dt = self.dt_proj.weight @ dt.transpose(1, 2)  # (b, d_inner, l); the op adds the bias
        A = -torch.exp(self.A_log.float())
        dt_bias = self.dt_proj.bias.float() if self.dt_proj.bias is not None else None

        if ssm_state is not None and seq_len == 1:
            y = selective_state_update(
                ssm_state, x[:, 0], dt[..., 0], A, B[:, 0], C[:, 0], self.D.float(), gate[..., 0], dt_bias,
                delta_softplus=True, backend=self.scan_backend,
            )[..., None]
        else:
            scanned = selective_scan(
                x.transpose(1, 2), dt, A, B.transpose(1, 2), C.transpose(1, 2), self.D.float(), gate, dt_bias,
                delta_softplus=True, return_last_state=cache is not None, backend=self.scan_backend,
            )
            if cache is not None:
                y, last_state = scanned
                cache.update_recurrent_state(last_state, layer)
            else:
                y = scanned
        return self.out_proj(y.transpose(1, 2).to(dtype))


def use_scan_backend(model: nn.Module, backend: str) -> str:
    """Route every Mamba mixer in `model` through the scan op with `backend`; 'hf' restores
    transformers' own mixer. Returns the implementation that runs on the model's device."""
    device = next(model.parameters()).device
    resolved = resolve_backend(backend, device)
    for module in model.modules():
        if not isinstance(module, MambaMixer):
            continue
        if backend == "hf":
            module.__class__ = MambaMixer
        else:
            module.__class__ = ScanMambaMixer
            module.scan_backend = backend
    return resolved
