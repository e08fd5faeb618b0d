"""Generation of a chat-trained output stops where its template ends the assistant's turn
(issue 29, item 2): ChatML's <|im_end|> is an added token, not eos, so a model that says it
used to go on until max_new_tokens. The model's choices are forced here (a model trained
for a step does not emit the marker reliably)."""

from __future__ import annotations

import json

import pytest

from engine.predict.predictor import Predictor, Sampling
from engine.spec.outputs import CHAT_FILE
from tests.engine.data.test_tokenizers_as_they_come import CHATML, byte_bpe, save_decoder

pytestmark = pytest.mark.slow


def force(predictor: Predictor, tokens: list[int]) -> None:
    """Make the model choose `tokens`, one per step (then its own choices)."""
    forward, step = predictor.model.forward, iter(tokens)

    def forced(*args, **kwargs):
        out = forward(*args, **kwargs)
        token = next(step, None)
        if token is not None:
            out.logits[0, -1] = -1e4
            out.logits[0, -1, token] = 1e4
        return out

    predictor.model.forward = forced


def test_a_chat_models_answer_ends_at_the_templates_end_of_turn(train_stage_of, tmp_path):
    from transformers import GenerationConfig

    tokenizer = byte_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tokenizer.chat_template = CHATML
    folder = save_decoder(tmp_path / "phi-chat", "phi", tokenizer)
    plan = f"""
name: t
stages:
  - name: s
    kind: train
    task: causal_lm_sft
    model: {{path: {folder}}}
    data: {{path: instructions.jsonl, prompt_column: prompt, response_column: response}}
    batch_size: 8
    max_steps: 1
"""
    result = train_stage_of(plan)
    assert result.outcome == "finished"
    [out] = result.recipe.save()
    eos, im_end = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    # Recorded with the output, and in its generation config for transformers' generate.
    record = json.loads((out / CHAT_FILE).read_text())
    assert record == {"chat_template": CHATML, "end_of_turn": "<|im_end|>"}
    assert GenerationConfig.from_pretrained(out).eos_token_id == [eos, im_end]

    predictor = Predictor(out)
    assert predictor.describe()["end_of_turn"] == "<|im_end|>"
    word = tokenizer("positive", add_special_tokens=False)["input_ids"][0]
    force(predictor, [word, im_end, word, word])
    answer = predictor.predict("mood of good?", Sampling(max_new_tokens=6, temperature=0))
    assert (answer["tokens"], answer["finish"]) == (1, "end")
    assert answer["generated"] == tokenizer.decode([word])
    # An output saved before the end of turn was recorded finds it from its template.
    record.pop("end_of_turn")
    (out / CHAT_FILE).write_text(json.dumps(record))
    assert Predictor(out).stop_ids == [eos, im_end]
