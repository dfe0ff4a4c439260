"""Front end: the OpenAI-compatible HTTP API and the MCP search tool (``docent api``)."""
