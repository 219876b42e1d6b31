"""Real-world context from the web (Exa), so personas rest on facts rather than clichés.

Enrichment is a help, never a requirement: every way it can fail (no key, a
timeout, an error, nothing found) becomes :class:`EnrichmentSkipped` with one
short reason, and the persona is written without it. Messages are our own
sentences; nothing the server sends, and never the key, is echoed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from persona_tui.engine.text import strip_control
from persona_tui.models import GenerationRequest, Organization, Source

log = logging.getLogger(__name__)

EXCERPT_CHARS = 400
QUERY_MAX = 300


class EnrichmentSkipped(Exception):
    """Why enrichment gave nothing; the generation goes on without it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def build_query(request: GenerationRequest, org: Organization | None) -> str:
    """A search query from the description and what is known of the organization."""
    parts = [request.description]
    if org is not None:
        parts += [v for v in (org.industry, org.product, org.audience, org.region) if v]
    query = " ".join(" ".join(parts).split())
    return query[:QUERY_MAX]


async def search_sources(
    query: str, *, api_key: str | None, base_url: str, timeout: float, results: int
) -> list[Source]:
    """Titles, URLs and excerpts of a few pages about ``query``, through the official exa-py client."""
    if not api_key:
        raise EnrichmentSkipped("EXA_API_KEY is not set")
    from exa_py import AsyncExa  # imported here: it is only needed when enrichment is asked for

    exa = AsyncExa(api_key=api_key, api_base=base_url.rstrip("/"), timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            response = await exa.search(
                query, num_results=results, contents={"text": {"max_characters": EXCERPT_CHARS}}
            )
    except TimeoutError:
        raise EnrichmentSkipped(f"the search did not answer within {timeout:g} s") from None
    except ValueError as exc:  # exa-py raises ValueError for any non-200 answer
        raise EnrichmentSkipped(_explain_status(str(exc))) from None
    except Exception as exc:  # any other failure of an optional stage is a skip, not a crash
        log.warning("enrichment failed: %s", type(exc).__name__)
        raise EnrichmentSkipped(f"the search failed ({type(exc).__name__})") from None
    finally:
        await exa.aclose()
    sources = [s for s in map(_source, response.results) if s is not None]
    if not sources:
        raise EnrichmentSkipped("the search found nothing")
    return sources


def _source(result: Any) -> Source | None:
    url = strip_control(str(getattr(result, "url", "") or ""), keep_newlines=False)
    if not url.startswith(("http://", "https://")):
        return None
    title = strip_control(str(getattr(result, "title", "") or url), keep_newlines=False)[:200]
    text = strip_control(str(getattr(result, "text", "") or ""), keep_newlines=False)
    return Source(title=title, url=url[:500], excerpt=text[:EXCERPT_CHARS])


def _explain_status(message: str) -> str:
    """exa-py's message is 'Request failed with status code N: <body>'; only N is kept."""
    match = re.search(r"status code (\d{3})", message)
    code = int(match.group(1)) if match else 0
    reasons = {401: "the key was rejected", 403: "the key has no access", 429: "rate limited"}
    if code in reasons:
        return f"Exa answered {code}: {reasons[code]}"
    if code >= 500:
        return f"Exa had a server error ({code})"
    return f"Exa refused the search ({code})" if code else "Exa refused the search"


def sources_prompt(sources: list[Source]) -> str:
    """The sources as the prompt gives them to the model."""
    lines = ["Real-world context from the web (use it to ground details; do not copy it):"]
    lines += [f"- {s.title} ({s.url}): {s.excerpt}" for s in sources]
    return "\n".join(lines)
