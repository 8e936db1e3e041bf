"""`encoderlab serve`: saved models behind an HTTP API (OpenAI-compatible embeddings), batched and safe under load.

    settings.py   ServeSettings: every limit and knob, documented and validated
    limits.py     the request limits: body size, API key, the error shape every 4xx uses
    batching.py   the dynamic batching queue: requests packed into batches by a token budget
    served.py     one served model per saved kind: validate + tokenize in front, batched inference behind
    metrics.py    Prometheus counters and histograms, rendered as text at /metrics
    page.py       the page at / (no external assets)
    app.py        the FastAPI app: routes, start-up warm-up, graceful drain; `run` starts uvicorn

Layers: serve -> artifacts (the CLI loads and, for int8, quantizes the models, then hands them here).
"""
