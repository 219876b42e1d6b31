"""The baseline process for target 2: the plain openai client consuming one stream.

Reads OPENAI_BASE_URL and OPENAI_API_KEY like the client does; asks for usage
as persona-tui does (so both read the same stream); prints the number of content
chunks to stdout. Usage: ``python plain_client.py [EXPECTED]``.
"""

from __future__ import annotations

import asyncio
import sys

import openai


async def main() -> int:
    client = openai.AsyncOpenAI(max_retries=0)
    try:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "personas"}],
            stream=True,
            stream_options={"include_usage": True},  # the same stream the app asks for (usage on the last chunk)
        )
        parts: list[str] = []
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
    finally:
        await client.close()
    print(len(parts))
    expected = int(sys.argv[1]) if len(sys.argv) > 1 else None
    return 0 if expected is None or expected == len(parts) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
