"""The synthesizer: grow the datasets through any OpenAI-compatible Chat Completions endpoint.

Layers inside: `config` and `prices` (what to call, what it may spend), `ratelimit` and `retry` (politeness),
`cache` (raw responses, content-addressed), `prompts` and `parsing` (what is asked and how answers are read),
`http` (the POST itself), `client` (one request, end to end), `novelty` and `store` (what is accepted, where it
goes), `judge`, and `job` (the generation loop with its `report`).
"""
