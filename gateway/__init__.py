"""An LLM gateway on aiohttp: one server for OpenAI and Anthropic clients, many providers."""

__version__ = "0.1.0"
