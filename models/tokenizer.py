"""A byte-level tokenizer for LMs trained from scratch: any text, no vocabulary file.

Ids 0..255 are the UTF-8 bytes themselves, followed by three specials (pad, bos, eos), so
259 ids in all: the `tiny` LMs' 512-entry vocabulary holds them with room to spare.
"""
from __future__ import annotations

from typing import Iterable

from models.errors import InputError

NUM_BYTES = 256


class ByteTokenizer:
    """UTF-8 bytes as token ids, plus pad/bos/eos."""

    kind = "bytes"
    pad_id = NUM_BYTES
    bos_id = NUM_BYTES + 1
    eos_id = NUM_BYTES + 2
    vocab_size = NUM_BYTES + 3

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        """text -> ids (one per UTF-8 byte), optionally framed by bos/eos."""
        return [self.bos_id] * bos + list(text.encode("utf-8")) + [self.eos_id] * eos

    def decode(self, ids: Iterable[int]) -> str:
        """ids -> text, stopping at the first eos and skipping other specials; bad UTF-8 is replaced."""
        data = bytearray()
        for token in ids:
            token = int(token)
            if token == self.eos_id:
                break
            if 0 <= token < NUM_BYTES:
                data.append(token)
        return data.decode("utf-8", errors="replace")

    def config(self) -> dict:
        """What a checkpoint records to rebuild this tokenizer."""
        return {"kind": self.kind, "vocab_size": self.vocab_size}

    def check_fits(self, lm_vocab_size: int) -> None:
        if self.vocab_size > lm_vocab_size:
            raise InputError(f"the byte tokenizer needs {self.vocab_size} token ids but the LM's vocabulary has {lm_vocab_size}")


def tokenizer_from_config(config: dict) -> ByteTokenizer:
    """Rebuild the tokenizer a checkpoint was trained with."""
    if config.get("kind") != ByteTokenizer.kind:
        raise InputError(f"unknown tokenizer kind {config.get('kind')!r} in checkpoint config; expected 'bytes'")
    return ByteTokenizer()
