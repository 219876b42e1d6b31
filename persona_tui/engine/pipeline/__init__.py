"""The generation pipeline, one module per concern.

- ``batch``: :func:`generate`, the lanes and the summary.
- ``job``: one persona: prompt, attempts, validation, a unique name, the save.
- ``attempt``: one request's stream turned into events, under a watchdog.
- ``watch``: the stream reader and its wake-ups.
- ``retry``: backoff, the batch-wide rate-limit gate, cancellable pauses.
- ``context``: the organization and web-search stages.
- ``names``: names already used.
- ``rewrite``: near-duplicates written again on the user's word.
- ``run``: what all of a run's jobs share.
"""

from __future__ import annotations

from persona_tui.engine.pipeline.batch import already_saved, generate
from persona_tui.engine.pipeline.rewrite import Rewrite, pairs_to_rewrite

__all__ = ["Rewrite", "already_saved", "generate", "pairs_to_rewrite"]
