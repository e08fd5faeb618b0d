"""One forward + backward of a masked-LM loss with the vocabulary projection on every
position (the full head, what `model(**batch).loss` computes) against the engine's head on
the labelled positions only (engine/recipes/heads.py, `sparse_head_loss`), interleaved.

    python bench/mlm_head.py [--rounds 60] [--threads 1]

bert-tiny shape (2 layers, hidden 128) with a 2,000-token vocabulary, batch 32, seq 64,
the engine's own masking (15 %); prints the median times and the median of the rounds'
full ÷ sparse ratios, and the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from transformers import AutoConfig, AutoModelForMaskedLM

from engine.recipes.heads import head_loss, mask_tokens, masked_width
from engine.train.losses import labelled_count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    config = AutoConfig.for_model(
        "bert",
        vocab_size=2000,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=512,
    )
    model = AutoModelForMaskedLM.from_config(config).train()
    ids = torch.randint(5, 2000, (32, 64))
    ids[:, 0], ids[:, -1] = 1, 2
    batch = mask_tokens(
        {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
        probability=0.15,
        mask_id=3,
        vocab_size=2000,
        specials=[0, 1, 2, 3],
        seed=0,
        micro_step=0,
    )
    targets, width = labelled_count(batch["labels"]), masked_width(0.15, 64)

    def step(width: int | None) -> float:
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        head_loss(model, batch, targets, False, width=width).loss.backward()
        return time.perf_counter() - start

    for _ in range(5):  # warm-up
        step(None)
        step(width)
    full, sparse = [], []
    for _ in range(args.rounds):
        full.append(step(None))
        sparse.append(step(width))
    ratio = statistics.median(f / s for f, s in zip(full, sparse, strict=True))
    print(
        f"{width} of 64 positions projected; forward+backward median: full head "
        f"{statistics.median(full) * 1e3:.1f} ms, sparse {statistics.median(sparse) * 1e3:.1f} "
        f"ms; full ÷ sparse {ratio:.3f} ({args.threads} thread(s), load "
        f"{os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
