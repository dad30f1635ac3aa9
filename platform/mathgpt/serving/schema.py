"""OpenAI request bodies and their validation against the server's limits (400 with a clear message)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from mathgpt.serving.settings import ServingSettings

MAX_STOP = 4  # OpenAI's limits on stop strings
MAX_STOP_CHARS = 64
MAX_MESSAGES = 256  # a bound on the chat template's work, far above any real conversation's turns
# OpenAI fields this server does not implement: a request that sets one gets 400 naming it, never an answer that
# silently ignored it. Fields whose unset value is sent by clients (false, null, 0, []) pass.
UNSUPPORTED = ("tools", "tool_choice", "functions", "function_call", "response_format", "logprobs", "top_logprobs",
               "logit_bias", "presence_penalty", "frequency_penalty", "best_of", "echo", "suffix", "audio",
               "modalities", "prediction", "parallel_tool_calls")


class TextPart(BaseModel):
    """One part of a message's content given as a list (OpenAI's content parts); only text is understood."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: Union[str, list[TextPart]]

    @field_validator("role")
    @classmethod
    def _developer_is_system(cls, value: str) -> str:
        return "system" if value == "developer" else value  # OpenAI's newer name for the system instructions

    @field_validator("content")
    @classmethod
    def _join_parts(cls, value: Union[str, list[TextPart]]) -> str:
        return value if isinstance(value, str) else "".join(part.text for part in value)


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    max_tokens: int = Field(256, ge=1)
    temperature: float = 0.0
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1)
    stream: bool = False
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)  # int64, as OpenAI and vLLM take it
    stop: Union[str, list[str], None] = None
    max_completion_tokens: int | None = Field(None, ge=1)  # OpenAI's newer name; it wins over max_tokens

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in UNSUPPORTED:
                if data.get(key) not in (None, False, 0, [], {}):
                    raise ValueError(f"{key} is not supported by this server")
        return data

    @model_validator(mode="after")
    def _completion_tokens(self) -> "_Common":
        if self.max_completion_tokens is not None:
            self.max_tokens = self.max_completion_tokens
        return self

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, value: Union[str, list[str], None]) -> Union[str, list[str], None]:
        stops = [value] if isinstance(value, str) else list(value or [])
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop strings, got {len(stops)}")
        if any(not s for s in stops):
            raise ValueError("stop strings cannot be empty")
        if any(len(s) > MAX_STOP_CHARS for s in stops):
            raise ValueError(f"stop strings are at most {MAX_STOP_CHARS} characters")
        return value

    def stop_list(self) -> list[str]:
        """Stop strings as a list."""
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class CompletionRequest(_Common):
    """/v1/completions body."""

    prompt: str

    def text_chars(self) -> int:
        return len(self.prompt)


class ChatRequest(_Common):
    """/v1/chat/completions body."""

    messages: list[Message] = Field(..., min_length=1, max_length=MAX_MESSAGES)

    def text_chars(self) -> int:
        return sum(len(m.content) for m in self.messages)


def check_limits(req: _Common, prompt_tokens: int, limits: "ServingSettings") -> str | None:
    """The first limit the request breaks, as a message for a 400; None when it is acceptable. (An unknown model
    is a 404, checked before this.)"""
    if req.max_tokens > limits.max_tokens_cap:
        return f"max_tokens {req.max_tokens} exceeds the cap of {limits.max_tokens_cap}"
    if req.n > limits.max_n:
        return f"n {req.n} exceeds the cap of {limits.max_n}"
    if req.stream and req.n != 1:
        return "streaming supports n=1 only"
    if not 0.0 <= req.temperature <= 2.0:
        return f"temperature {req.temperature} is outside [0, 2]"
    if prompt_tokens > limits.max_prompt_tokens:
        return f"prompt has {prompt_tokens} tokens; the limit is {limits.max_prompt_tokens}"
    if prompt_tokens + req.max_tokens > limits.context_length:
        return (f"prompt tokens ({prompt_tokens}) + max_tokens ({req.max_tokens}) exceed the context length "
                f"of {limits.context_length}")
    return None
