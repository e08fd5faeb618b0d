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

from collections.abc import Callable
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
