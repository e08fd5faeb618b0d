"""Chat data for supervised fine-tuning: a row's messages (a list of {role, content})
rendered with a chat template into token ids, with labels on the assistant's turns only.

The template is the tokenizer's own `chat_template` when the model folder has one, else
PLAIN_CHAT_TEMPLATE below, which the stage's output tokenizer then carries, so that
`tokenizer.apply_chat_template` renders prompts at inference exactly as in training.

A tokenizer that has a chat template renders prompt/response rows (instruction SFT,
preference pairs) with it too, as one user turn and the assistant's answer; one without
keeps the plain `prompt response<eos>` format. An output trained on rendered rows says so
in `engine.spec.outputs.CHAT_FILE`, and the playground and `stagelab predict` render
prompts with the same template (docs/models.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# <|role|> on a line of its own, then the content; an assistant turn ends with the end-of-
# text token, so the model learns where an answer stops. transformers renders templates
# with trim_blocks, which eats a newline right after a block tag: it is written as '\n'.
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

ASSISTANT = "assistant"


class ChatTemplateError(ValueError):
    """A chat template that does not render a conversation turn by turn."""


def chat_segments(
    messages: list[dict[str, Any]], render: Callable[[list[dict[str, Any]], bool], str]
) -> list[tuple[str, bool]]:
    """The rendered conversation as (text, learned) pieces, in order.

    Each message's text is what rendering one more message adds; an assistant message is
    split into its header (the generation prompt, not learned) and its answer (learned).

    Args:
        messages: the conversation.
        render: renders messages (with the generation prompt when the flag is set).

    Raises:
        ChatTemplateError: if a longer conversation does not render as an extension of a
            shorter one (the template rewrites earlier turns).
    """
    segments: list[tuple[str, bool]] = []
    done = ""
    for k, message in enumerate(messages):
        full = render(messages[: k + 1], False)
        if message.get("role") == ASSISTANT:
            prompt = render(messages[:k], True) if k else ""
            if not (prompt.startswith(done) and full.startswith(prompt)):
                raise ChatTemplateError(
                    "the chat template does not render turn by turn (turn "
                    f"{k + 1} changes the text before it); use prompt_column/response_column"
                )
            segments += [(prompt[len(done) :], False), (full[len(prompt) :], True)]
        else:
            if not full.startswith(done):
                raise ChatTemplateError(
                    f"the chat template does not render turn by turn (turn {k + 1} changes "
                    "the text before it); use prompt_column/response_column"
                )
            segments.append((full[len(done) :], False))
        done = full
    return [(text, learned) for text, learned in segments if text]


def chat_pieces(messages: list[dict[str, Any]], tokenizer: Any) -> list[tuple[list[int], bool]]:
    """A conversation rendered with the tokenizer's chat template (Stagelab's plain one if
    it has none) as (token ids, learned) pieces. Each piece is tokenised alone, so no token
    straddles a boundary."""
    template = tokenizer.chat_template or PLAIN_CHAT_TEMPLATE

    def render(conversation: list[dict[str, Any]], generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(
            conversation,
            chat_template=template,
            tokenize=False,
            add_generation_prompt=generation_prompt,
        )

    plain = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
    return [
        (tokenizer(text, add_special_tokens=False)["input_ids"], learned)
        for text, learned in chat_segments(plain, render)
    ]


def encode_chat(
    messages: list[dict[str, Any]], tokenizer: Any, max_length: int, ignore: int
) -> tuple[list[int], list[int]]:
    """Token ids of a conversation and its labels: the ids on assistant answers, `ignore`
    everywhere else."""
    ids: list[int] = []
    labels: list[int] = []
    for piece, learned in chat_pieces(messages, tokenizer):
        ids += piece
        labels += piece if learned else [ignore] * len(piece)
    return ids[:max_length], labels[:max_length]


def chat_pair(prompt: str, response: str, tokenizer: Any) -> tuple[list[int], list[int]]:
    """A prompt and its response as the chat template renders one exchange: the ids up to
    the answer (the user's turn and the assistant's header) and the answer's (with the
    template's end of turn); what the template writes after the answer is left out."""
    exchange = [{"role": "user", "content": prompt}, {"role": ASSISTANT, "content": response}]
    asked: list[int] = []
    answer: list[int] = []
    for piece, learned in chat_pieces(exchange, tokenizer):
        if learned:
            answer += piece
        elif not answer:
            asked += piece
    return asked, answer


def chat_prompt(text: str, tokenizer: Any) -> str:
    """`text` as the user's turn, followed by the assistant's header: what a model trained
    on rendered rows continues (the playground and `stagelab predict`)."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )


# An answer no template writes, found again in the rendered text: what follows it is the
# template's end of the assistant's turn.
_ANSWER = "Stagelab7answer"


def end_of_turn(tokenizer: Any) -> str | None:
    """The token that ends the assistant's turn in the tokenizer's chat template (Stagelab's
    plain one if it has none): the first token the template writes after the answer, when
    it is a special or added token (ChatML's '<|im_end|>', Llama 3's '<|eot_id|>', Gemma's
    '<end_of_turn>', eos). None when the template writes plain text there, or renders no
    exchange. Generation stops at it as at eos: a chat model ends its answers with it."""
    template = tokenizer.chat_template or PLAIN_CHAT_TEMPLATE
    exchange = [{"role": "user", "content": "hello"}, {"role": ASSISTANT, "content": _ANSWER}]
    try:
        text = tokenizer.apply_chat_template(exchange, chat_template=template, tokenize=False)
    except Exception:  # noqa: BLE001 - jinja's errors, a template's own raise_exception
        return None  # a template that wants other turns (a system message first …)
    at = text.rfind(_ANSWER)
    if at < 0:
        return None
    marked = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    for token in tokenizer(text[at + len(_ANSWER) :], add_special_tokens=False)["input_ids"]:
        if token in marked:
            return tokenizer.convert_ids_to_tokens(token)
        if tokenizer.decode([token]).strip():
            return None  # text before any marker: the turn ends in words, not a token
    return None


def chat_record(tokenizer: Any) -> dict[str, Any]:
    """What an output trained on chat-rendered rows keeps of its chat (CHAT_FILE): the
    template and the token that ends the assistant's turn."""
    return {"chat_template": tokenizer.chat_template, "end_of_turn": end_of_turn(tokenizer)}


def stop_ids(tokenizer: Any, end_of_turn_token: str | None) -> list[int]:
    """The ids generation stops at: eos, and the chat template's end of turn."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if end_of_turn_token:
        token = tokenizer.convert_tokens_to_ids(end_of_turn_token)
        if isinstance(token, int) and token != tokenizer.unk_token_id and token not in ids:
            ids.append(token)
    return ids


def stop_at_end_of_turn(folder: Path, tokenizer: Any, end_of_turn_token: str | None) -> None:
    """Add the end-of-turn id to the eos ids of a saved model's generation config, so
    transformers' `generate` on the output stops where its answers end, as the
    predictor does (a folder without a generation config is left as it is)."""
    path = Path(folder) / "generation_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    known = config.get("eos_token_id")
    ids = known if isinstance(known, list) else [] if known is None else [known]
    ids = ids + [i for i in stop_ids(tokenizer, end_of_turn_token) if i not in ids]
    if ids and ids != known:
        config["eos_token_id"] = ids if len(ids) > 1 else ids[0]
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def renders_chat(tokenizer: Any, objective: str, messages_column: str | None) -> bool:
    """Whether a stage's rows are rendered with a chat template: chat rows always, prompt
    and response rows (instruction SFT, preference pairs) when the tokenizer has one."""
    if objective not in ("causal_lm_sft", "preference"):
        return False
    return bool(messages_column) or bool(getattr(tokenizer, "chat_template", None))


def message_texts(value: Any) -> str:
    """The contents of a messages cell as one text (for learning a built-in tokenizer)."""
    if isinstance(value, list):
        return "\n".join(
            str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in value
        )
    return str(value)
