"""Docent's assistant: the language model client, prompts, answers with citations, summaries."""
