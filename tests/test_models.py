"""The LALM variants: they build, run every phase, count like the papers, and cache consistently."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from models import VARIANTS, build, num_audio_tokens, spec_for
from models.encoders import ASTEncoder, DASSEncoder
from models.errors import InputError
from models.families import LMS
from models.families.ast import AST_BASE
from models.families.dass import DASS_MEDIUM, DASS_SMALL
from models.families.llama import LLAMA_7B, LLAMA_MATCHED
from models.families.mamba import MAMBA_2_8B
from models.lalm import padded_frames
from models.lms import CausalLM
from models.params import count, lora_trainable
from tests.conftest import make_wave


@pytest.fixture(scope="module")
def tiny_models():
    return {v: build(v, "tiny") for v in VARIANTS}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("seconds,batch", [(1.0, 1), (1.0, 3), (4.0, 1), (4.0, 3)])
def test_tiny_generate_runs(tiny_models, variant, seconds, batch):
    model = tiny_models[variant]
    prompt = torch.randint(0, model.lm.vocab_size, (batch, 6))
    out = model.generate(make_wave(seconds, batch), prompt, max_new_tokens=5)
    assert out.shape == (batch, 5)
    assert out.dtype == torch.long and int(out.max()) < model.lm.vocab_size


@pytest.mark.parametrize("variant", ["ast+llama", "dass+mamba"])
def test_greedy_generate_matches_full_forward_argmax(variant):
    """Cache consistency: decoding with the cache equals recomputing the whole sequence each step."""
    model = build(variant, "tiny", dtype=torch.float64)
    wave = make_wave(1.0, batch=2)
    prompt = torch.randint(0, model.lm.vocab_size, (2, 4), generator=torch.Generator().manual_seed(1))
    generated = model.generate(wave, prompt, max_new_tokens=6)
    with torch.inference_mode():
        feats = model.features(wave)
        ids = prompt
        for step in range(6):
            nxt = model(feats, ids)[:, -1].argmax(-1)
            assert torch.equal(nxt, generated[:, step]), f"step {step}"
            ids = torch.cat([ids, nxt[:, None]], dim=1)


def test_phases_compose_to_generate(tiny_models):
    model = tiny_models["dass+llama"]
    wave, prompt = make_wave(1.0), torch.tensor([[1, 2, 3]])
    with torch.inference_mode():
        enc = model.encode(model.features(wave))
        logits, cache = model.prefill(enc, prompt)
        first = logits.argmax(-1)
    assert torch.equal(first, model.generate(wave, prompt, 1)[:, 0])
    assert enc.num_tokens == num_audio_tokens(1.0)


def test_paper_shapes_count_like_the_papers():
    def lm(name, shape):
        return CausalLM(LMS[name], LMS[name].build(shape))

    with torch.device("meta"):
        llama, mamba = lm("llama", LLAMA_7B), lm("mamba", MAMBA_2_8B)
        assert count(llama) == 6_738_415_616
        assert count(mamba) == 2_768_345_600
        assert count(ASTEncoder(AST_BASE).ast) == 86_187_264
        assert lora_trainable(llama) == 4_194_304
        assert lora_trainable(mamba) == 6_553_600
        assert abs(count(DASSEncoder(DASS_SMALL)) / 30e6 - 1) < 0.05
        assert abs(count(DASSEncoder(DASS_MEDIUM)) / 49e6 - 1) < 0.05
        # `matched` LLaMA is within 1% of Mamba-2.8B.
        assert abs(count(lm("llama", LLAMA_MATCHED)) / count(mamba) - 1) < 0.01


def test_build_inside_a_meta_device_context():
    """The common idiom `with torch.device("meta"): build(...)`: the fbank tables still come from data."""
    with torch.device("meta"):
        model = build("dass+mamba", "tiny", device="meta")
    assert {t.device.type for t in (*model.parameters(), *model.buffers())} == {"meta"}


def test_whole_paper_lalm_builds_on_meta():
    model = build("ssm", "paper", device="meta")
    assert model.spec.variant == "dass+mamba" and model.device.type == "meta"


@pytest.mark.parametrize("variant", ["ast+llama", "dass+llama"])
@pytest.mark.parametrize("seconds,tokens", [(10.0, 32), (100.0, 320)])
def test_audio_token_counts(variant, seconds, tokens):
    """32 LM audio tokens per 10 s from both projectors (shapes checked on the meta device)."""
    model = build(variant, "tiny", device="meta")
    assert num_audio_tokens(seconds) == tokens
    feats = torch.zeros(1, padded_frames(int(seconds * 16000)), 128, device="meta")
    enc = model.encode(feats)
    assert model.audio_embeds(enc).shape == (1, tokens, model.lm.width)


@pytest.mark.parametrize("variant", ["ast+llama", "dass+mamba"])
def test_local_weights_load_into_each_component_under_their_hugging_face_names(tmp_path, variant):
    source = build(variant, "tiny", seed=1)
    # An AST classifier's checkpoint nests the model under `audio_spectrogram_transformer.`.
    encoder_prefix = "audio_spectrogram_transformer." if variant.startswith("ast") else ""
    parts = {"encoder": (source.encoder.ast if encoder_prefix else source.encoder, encoder_prefix),
             "projector": (source.projector, ""), "lm": (source.lm.model, "")}
    for component, (module, prefix) in parts.items():
        tensors = {prefix + k: v.clone() for k, v in module.state_dict().items()}  # tied: a copy each
        save_file(tensors, str(tmp_path / f"{component}.safetensors"))
    loaded = build(variant, "tiny", seed=2, weights={c: tmp_path / f"{c}.safetensors" for c in parts})
    for component in parts:
        theirs = getattr(source, component).state_dict()
        assert all(torch.equal(v, theirs[k]) for k, v in getattr(loaded, component).state_dict().items()), component


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(InputError, match="valid variants: ast\\+llama"):
        spec_for("rnn+gpt", "tiny")
    with pytest.raises(InputError, match="valid sizes: tiny, small, paper, matched"):
        spec_for("ssm", "huge")
    with pytest.raises(InputError, match="scan backend"):
        build("ssm", "tiny", scan_backend="fast")
