"""The name of a decoder's key/value cache in transformers' calls and outputs.

transformers 5.24 renamed `past_key_values` to `cache` (the old keyword is deprecated,
the outputs only have the new field); the lent GPU machines' image has 5.17. Generation
steps pass and read the cache under the name the installed transformers uses.
"""

from __future__ import annotations

import functools


@functools.cache
def cache_name() -> str:
    """`cache` (transformers >= 5.24) or `past_key_values` (earlier)."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    fields = CausalLMOutputWithPast.__dataclass_fields__
    return "cache" if "cache" in fields else "past_key_values"
