"""Full-parameter fine-tuning beside frozen / top-N / LoRA."""

from __future__ import annotations

import pytest
import torch

from fusionrec.errors import ConfigError

pytest.importorskip("sentence_transformers")


def test_full_mode_trains_every_weight_and_a_step_moves_the_embeddings():
    from fusionrec.encoders.finetune import TextFeatureBank, apply_finetune
    from fusionrec.encoders.text import load_text_encoder

    enc = load_text_encoder(fresh=True)
    names = apply_finetune(enc, "full")
    every = [n for n, _ in enc.module.named_parameters()]
    assert names == every and any("embeddings" in n for n in names)
    texts = ["a space opera", "a love story", "a war film"]
    mem = enc.encode(texts)
    bank = TextFeatureBank(mem, texts, enc, live_items=2).train()
    (group,) = bank.param_groups(1e-3)
    assert len(group["params"]) == len(every) and group["lr"] == 1e-3
    word = dict(enc.module.named_parameters())
    key = next(n for n in every if "word_embeddings" in n)
    before = word[key].detach().clone()
    opt = torch.optim.SGD(group["params"], lr=1.0)
    out = bank(torch.tensor([0, 1]))
    (out[0] @ out[1]).backward()
    opt.step()
    assert not torch.equal(before, word[key].detach())  # embeddings trained too (not in top_n/lora)
    with pytest.raises(ConfigError, match="frozen, top_n, lora or full"):
        apply_finetune(load_text_encoder(fresh=True), "half")  # type: ignore[arg-type]
