"""tensor_bytes: every storage once, any nesting, caches from transformers."""
from __future__ import annotations

import torch
from torch import nn
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM, StaticCache

from harness.measure.cuda_graph import cache_argument
from models.state import tensor_bytes


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         intermediate_size=64, vocab_size=50)
    return LlamaForCausalLM(config).eval()


def test_views_of_one_storage_count_once():
    t = torch.zeros(10, 10)
    assert tensor_bytes([t, t[2:], t.view(100), {"again": t}]) == 400


def test_nested_containers_and_objects():
    class Holder:
        def __init__(self):
            self.a = torch.zeros(4, dtype=torch.float64)
            self.inner = {"b": [torch.zeros(2, dtype=torch.int8), (torch.zeros(3),)]}

    assert tensor_bytes(Holder()) == 32 + 2 + 12


def test_slots_are_walked_and_cycles_terminate():
    class Slotted:
        __slots__ = ("t", "me")

        def __init__(self):
            self.t = torch.zeros(5)
            self.me = self

    assert tensor_bytes(Slotted()) == 20


def test_module_weights_are_not_state():
    assert tensor_bytes({"model": nn.Linear(4, 4), "state": torch.zeros(2)}) == 8


def test_empty_structures_hold_zero_bytes():
    assert tensor_bytes(None) == 0
    assert tensor_bytes(torch.empty(0)) == 0


def test_dynamic_cache_is_keys_plus_values():
    model = tiny_llama()
    with torch.inference_mode():
        out = model(input_ids=torch.randint(0, 50, (2, 7)), use_cache=True)
    cache = out.past_key_values
    assert isinstance(cache, DynamicCache)
    expected = sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)
    assert expected == 2 * 2 * (2 * 2 * 7 * 8) * 4  # layers * (k, v) * (B, kv heads, L, head dim) * fp32
    assert tensor_bytes(cache) == expected


def test_static_cache_counts_its_preallocated_slots():
    model = tiny_llama()
    cache = StaticCache(config=model.config, max_cache_len=20)
    with torch.inference_mode():
        model(input_ids=torch.randint(0, 50, (1, 3)), use_cache=True, **{cache_argument(model): cache})
    slots = 2 * 2 * (1 * 2 * 20 * 8) * 4  # all 20 slots, though only 3 are filled
    assert slots <= tensor_bytes(cache) <= slots + 2 * 64  # plus per-layer bookkeeping scalars


def test_state_leaves_out_the_cache_bookkeeping_not_integer_state():
    """A token counter (transformers >= 5.25 keeps an int64 one per Mamba layer) is not state; a
    quantized KV tensor is."""
    from models.state import state_bytes

    cache = {"conv": torch.zeros(2, 8, 4), "ssm": torch.zeros(2, 8, 16, dtype=torch.bfloat16),
             "seen_tokens": torch.tensor(12), "also_seen": torch.tensor([12]),
             "int8_keys": torch.zeros(2, 4, 8, dtype=torch.int8)}
    assert state_bytes(cache) == 2 * 8 * 4 * 4 + 2 * 8 * 16 * 2 + 2 * 4 * 8
