"""The HTTP app: routes per saved kind over the batching queues, limits, metrics and a graceful drain.

    app = create_app({"minilm": TextEncoder.from_pretrained("minilm")}, ServeSettings())
    run(app, settings)            # uvicorn on settings.host:settings.port until SIGINT / SIGTERM

Routes: POST /v1/embeddings (OpenAI's shape; also audio clips, table rows and images as JSON objects),
/v1/tokenize, /v1/classify (texts, audio clips, table rows), /v1/tag, /v1/generate, /v1/score, /v1/recommend;
GET /v1/models, /health, /ready, /metrics, /openapi.json, /docs and / (a page to try the models).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, ORJSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import EncoderlabError
from .batching import Batcher, InferencePool, QueueFull, TooLarge
from .limits import APIError, BodyLimit, check_api_key, error_body
from .metrics import ServerMetrics
from .page import PAGE
from .schemas import (
    ClassifyRequest,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorResponse,
    GenerateRequest,
    RecommendRequest,
    ScoreRequest,
    TagRequest,
    TokenizeRequest,
)
from .served import Served, ServedTextModel, check_texts, serve_model
from .settings import ServeSettings

log = logging.getLogger("encoderlab.serve")
ROUTE_OF_OPERATION = {"embed": "/v1/embeddings", "classify": "/v1/classify", "tag": "/v1/tag",
                      "generate": "/v1/generate", "score": "/v1/score", "recommend": "/v1/recommend"}
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 422, 429)}


class ServerState:
    """The served models, their batching queues and what /ready, /metrics report."""

    def __init__(self, models: Mapping[str, Served], settings: ServeSettings):
        self.models, self.settings = dict(models), settings
        self.metrics = ServerMetrics()
        self.pool: InferencePool | None = None
        self.batchers: dict[tuple[str, str], Batcher] = {}
        self.ready = False
        self.created = int(time.time())

    def start(self) -> None:
        """The inference threads and every model's batcher (in the server's event loop)."""
        s, threads = self.settings, torch.get_num_threads()
        workers = s.resolve_workers(threads)
        each = max(1, threads // workers)
        # each worker's thread count set explicitly: whether a new thread inherits torch.set_num_threads depends
        # on the build's threading backend
        self.pool = InferencePool(workers, torch.set_num_threads, (each,))
        for name, served in self.models.items():
            for operation, run_batch in served.operations.items():
                self.batchers[name, operation] = Batcher(f"{name}:{operation}", run_batch, self.pool,
                                                         self.metrics, s.max_batch_tokens, s.max_queue, s.batching)
        for batcher in self.batchers.values():
            batcher.start()
        log.info("inference: %d worker(s) of %d thread(s)", workers, each)

    async def stop(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()
        if self.pool is not None:
            self.pool.shutdown()

    async def warm_up(self) -> None:
        """One request's worth of work through every model (first calls pay for lazy set-up), then ready."""
        if self.settings.warmup:
            for name, served in self.models.items():
                operation, payloads = served.warmup()
                try:
                    await self.batchers[name, operation].submit(payloads, [8] * len(payloads))
                except Exception:  # a model that cannot run: /ready stays 503, and the log says why
                    log.exception("warm-up of %s failed; /ready stays 503", name)
                    return
        self.ready = True
        log.info("ready: %s", ", ".join(f"{n} ({m.kind})" for n, m in self.models.items()))

    def pick(self, requested: str | None, operation: str) -> Served:
        """The model a request names (or the first that can do `operation`), or a 4xx saying what to send."""
        if requested is None:
            found = next((m for m in self.models.values() if operation in m.operations), None)
            if found is None:
                raise APIError(404, f"no served model does {ROUTE_OF_OPERATION[operation]}; this server has "
                                    f"{self.listing()}", "model", "model_not_found")
            return found
        served = self.models.get(requested)
        if served is None:
            raise APIError(404, f"model {requested!r} is not served here; this server has {self.listing()} "
                                "(GET /v1/models)", "model", "model_not_found")
        if operation not in served.operations:
            routes = " or ".join(ROUTE_OF_OPERATION[o] for o in served.operations)
            raise APIError(400, f"model {requested!r} is a {served.kind}: it does not do "
                                f"{ROUTE_OF_OPERATION[operation]}; use {routes}", "model", "wrong_model_kind")
        return served

    def listing(self) -> str:
        return ", ".join(f"{n!r} ({m.kind})" for n, m in self.models.items())

    def check_count(self, inputs: Sequence) -> None:
        if len(inputs) > self.settings.max_texts:
            raise APIError(413, f"{len(inputs)} inputs in one request; the server takes at most "
                                f"{self.settings.max_texts} (--max-texts). Send them in several requests",
                           "input", "too_many_inputs")

    async def run(self, served: Served, operation: str, payloads: Sequence, costs: Sequence[int]) -> list:
        try:
            return await self.batchers[served.name, operation].submit(payloads, costs)
        except TooLarge as exc:
            raise APIError(413, f"{exc}; send fewer or shorter texts per request, or start the server with a larger "
                                "--max-queue", "input", "too_many_inputs") from exc
        except QueueFull as exc:
            raise APIError(429, f"the server is busy: {exc}. Retry after a moment, or start it with a larger "
                                "--max-queue", None, "queue_full", {"Retry-After": "1"}) from exc


def as_list(value: Any) -> list:
    """A single input (a string, or one list of token ids) -> a list of inputs; an empty one is refused."""
    if isinstance(value, str):
        value = [value]
    elif value and isinstance(value[0], int):
        value = [value]
    if not value:
        raise APIError(422, "input is empty; send at least one input", "input", "empty_input")
    return list(value)


def text_inputs(served: Served, inputs: list) -> list:
    """A text model's inputs: strings (or token ids); a JSON object is a 422 saying what the model reads."""
    for i, item in enumerate(inputs):
        if isinstance(item, dict):
            raise APIError(422, f"input[{i}] is a JSON object; model {served.name!r} is a {served.kind} and reads "
                                "texts (strings)", "input", "invalid_input")
    return inputs


def create_app(models: Mapping[str, Any], settings: ServeSettings | None = None) -> FastAPI:
    """The app serving `models` (name -> a loaded model: TextEncoder, TextClassifier, TokenTagger,
    Seq2SeqPredictor, ArrayEncoder, Recommender, AudioClassifier, MultimodalClassifier or ImageTextEncoder)."""
    settings = settings or ServeSettings()
    if not models:
        raise EncoderlabError("serve needs at least one model; pass --model minilm or --model NAME=RUN_DIR")
    served = {name: serve_model(name, model, settings.precision, settings.chunk) for name, model in models.items()}
    state = ServerState(served, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start()
        warming = asyncio.create_task(state.warm_up())
        yield
        warming.cancel()
        await state.stop()

    app = FastAPI(title="encoderlab serve", version="1", lifespan=lifespan,
                  description="Saved encoderlab models behind an OpenAI-compatible API, batched by a token budget.")
    app.state.serve = state

    async def require_key(authorization: str | None = Header(None, include_in_schema=False)) -> None:
        check_api_key(authorization, settings.api_key)

    guarded = {"dependencies": [Depends(require_key)], "responses": ERRORS}

    # ------------------------------------------------------------------------------------ errors -> 4xx
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(error_body(400, "the request body is not valid JSON; send a JSON object such as "
                                                '{"input": ["a text"], "model": "NAME"}', "body", "invalid_json"), 400)
        if len(errors) == 1 and errors[0].get("loc") == ("body",) and errors[0].get("type") == "model_attributes_type":
            return JSONResponse(error_body(400, "the request body must be a JSON object, sent with the header "
                                                "Content-Type: application/json", "body", "invalid_json"), 400)
        shown = []
        for e in errors[:3]:
            where = ".".join(str(p) for p in e.get("loc", ())[1:]) or "body"
            shown.append(f"{where}: {e.get('msg', 'invalid')}")
        param = ".".join(str(p) for p in errors[0].get("loc", ())[1:2]) if errors else None
        return JSONResponse(error_body(422, "invalid request: " + "; ".join(shown), param or None, "invalid_request"),
                            422)

    @app.exception_handler(EncoderlabError)
    async def user_error(request: Request, exc: EncoderlabError) -> JSONResponse:
        return JSONResponse(error_body(422, str(exc), None, "invalid_input"), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code in (404, 405):
            message = (f"{request.method} {request.url.path}: {message.lower()}. The routes are listed at "
                       "/openapi.json and /docs")
        headers = getattr(exc, "headers", None)
        return JSONResponse(error_body(exc.status_code, message), exc.status_code, headers=headers)

    # ------------------------------------------------------------------------------------ service routes
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: models loaded and warmed up (503 until then)")
    async def ready() -> JSONResponse:
        if state.ready:
            return JSONResponse({"status": "ready", "models": list(state.models)})
        return JSONResponse({"status": "warming up"}, 503)

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics", **guarded)
    async def metrics() -> PlainTextResponse:
        for (name, operation), batcher in state.batchers.items():
            state.metrics.queue_depth.set(batcher.depth, f"{name}:{operation}")
        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models", summary="The served models", **guarded)
    async def list_models() -> dict:
        return {"object": "list", "data": [
            {"id": name, "object": "model", "created": state.created, "owned_by": "encoderlab", "kind": m.kind,
             "routes": [ROUTE_OF_OPERATION[o] for o in m.operations], **m.describe()}
            for name, m in state.models.items()]}

    # ------------------------------------------------------------------------------------ model routes
    @app.post("/v1/embeddings", summary="Embed texts (OpenAI's request and response); audio clips, table rows, "
                                        "images as JSON objects", dependencies=guarded["dependencies"],
              responses={200: {"model": EmbeddingResponse}, **ERRORS})
    async def embeddings(body: EmbeddingRequest) -> ORJSONResponse:
        served = state.pick(body.model, "embed")
        inputs = as_list(body.input)
        if body.dimensions is not None and body.dimensions != served.dim:
            raise APIError(422, f"model {served.name!r} returns {served.dim}-dimensional embeddings and cannot cut "
                                f"them to dimensions={body.dimensions} (it was not trained for it); drop the field",
                           "dimensions", "dimensions_not_supported")
        state.check_count(inputs)
        if isinstance(served, ServedTextModel):
            tokenized = await asyncio.to_thread(served.tokenize, text_inputs(served, inputs), body.truncate,
                                                getattr(served, "chunk", False))
            vectors = await state.run(served, "embed", tokenized.ids, [len(s) for s in tokenized.ids])
            matrix = served.finish(vectors, tokenized, len(inputs))  # (N, d) float32
            tokens, truncated = tokenized.tokens, len(tokenized.truncated)
        else:  # audio clips, table rows, images: JSON objects
            payloads, costs = await asyncio.to_thread(served.payloads, inputs, "embed")
            matrix = np.stack(await state.run(served, "embed", payloads, costs)).astype(np.float32)
            tokens, truncated = sum(costs), 0
        if body.encoding_format == "base64":
            rows: list = [base64.b64encode(row.astype("<f4").tobytes()).decode("ascii") for row in matrix]
        else:
            rows = list(matrix)  # float32 rows, written by orjson as the shortest decimals that read back exactly
        data = [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)]
        return ORJSONResponse({"object": "list", "data": data, "model": served.name,
                               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
                              headers={"X-Truncated-Inputs": str(truncated)})

    @app.post("/v1/tokenize", summary="Token ids and tokens of texts, as the model sees them", **guarded)
    async def tokenize(body: TokenizeRequest) -> dict:
        served = state.pick(body.model, "embed")  # text encoders and classifiers
        if not isinstance(served, ServedTextModel):
            raise APIError(400, f"model {served.name!r} is a {served.kind}: it reads no tokens (its input is "
                                f"{getattr(served, 'shape', 'not text')})", "model", "wrong_model_kind")
        texts = as_list(body.input)
        state.check_count(texts)
        check_texts(texts)
        encodings = served.front.tokenizer.encode_batch([t.strip().lower() if served.front.lower else t.strip()
                                                         for t in texts])
        limit = served.front.max_tokens
        return {"model": served.name, "max_input_tokens": limit, "data": [
            {"index": i, "ids": e.ids, "tokens": e.tokens, "count": len(e.ids), "truncated": len(e.ids) > limit}
            for i, e in enumerate(encodings)]}

    @app.post("/v1/classify", summary="Labels and probabilities (text, audio and multimodal classifiers; image-text "
                                      "models: zero-shot categories of images)", **guarded)
    async def classify(body: ClassifyRequest) -> ORJSONResponse:
        served = state.pick(body.model, "classify")
        inputs = as_list(body.input)
        state.check_count(inputs)
        if isinstance(served, ServedTextModel):
            tokenized = await asyncio.to_thread(served.tokenize, text_inputs(served, inputs), True, False)
            payloads, costs = tokenized.ids, [len(s) for s in tokenized.ids]
            tokens, truncated = tokenized.tokens, len(tokenized.truncated)
        else:  # audio clips, table rows, images: JSON objects
            payloads, costs = await asyncio.to_thread(served.payloads, inputs, "classify")
            tokens, truncated = sum(costs), 0
        probabilities = await state.run(served, "classify", payloads, costs)
        labels = served.labels
        data = [{"index": i, "label": labels[int(np.argmax(p))], "score": float(np.max(p)),
                 "probabilities": {label: float(v) for label, v in zip(labels, p, strict=True)}}
                for i, p in enumerate(probabilities)]
        return ORJSONResponse({"object": "list", "model": served.name, "data": data,
                               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
                              headers={"X-Truncated-Inputs": str(truncated)})

    @app.post("/v1/tag", summary="One tag per word (fine-tuned token taggers)", **guarded)
    async def tag(body: TagRequest) -> dict:
        served = state.pick(body.model, "tag")
        raw = [body.input] if isinstance(body.input, str) else body.input
        if not raw:
            raise APIError(422, "input is empty; send at least one sentence", "input", "empty_input")
        state.check_count(raw)
        sentences = served.sentences(raw)
        tags = await state.run(served, "tag", sentences, [len(s) + 2 for s in sentences])
        return {"object": "list", "model": served.name,
                "data": [{"index": i, "words": w, "tags": t} for i, (w, t) in enumerate(zip(sentences, tags,
                                                                                               strict=True))]}

    @app.post("/v1/generate", summary="Output strings of a seq2seq model", **guarded)
    async def generate(body: GenerateRequest) -> dict:
        served = state.pick(body.model, "generate")
        texts = as_list(body.input)
        state.check_count(texts)
        payloads, costs = served.sources(texts, body.beam_size)
        outputs = await state.run(served, "generate", payloads, costs)
        return {"object": "list", "model": served.name,
                "data": [{"index": i, "output": out} for i, out in enumerate(outputs)]}

    @app.post("/v1/score", summary="Anomaly score (and code, reconstruction) of samples (autoencoders)", **guarded)
    async def score(body: ScoreRequest) -> ORJSONResponse:
        served = state.pick(body.model, "score")
        if not body.input:
            raise APIError(422, "input is empty; send at least one sample", "input", "empty_input")
        state.check_count(body.input)
        samples = served.samples(body.input)
        results = await state.run(served, "score", samples, [s.size for s in samples])
        data = []
        for i, r in enumerate(results):
            row: dict[str, Any] = {"index": i, "score": r.score}
            if body.return_embedding:
                row["embedding"] = r.embedding.tolist()
            if body.return_reconstruction:
                row["reconstruction"] = r.reconstruction.tolist()
            data.append(row)
        return ORJSONResponse({"object": "list", "model": served.name, "data": data})

    @app.post("/v1/recommend", summary="Top items for a user or a history (recommenders)", **guarded)
    async def recommend(body: RecommendRequest) -> dict:
        served = state.pick(body.model, "recommend")
        if (body.user is None) == (body.items is None):
            raise APIError(422, "send exactly one of `user` (a known user id) or `items` (a history of item ids)",
                           "user", "invalid_request")
        state.check_count(body.items or [])
        [result] = await state.run(served, "recommend", [(body.user, body.items, body.top, body.exclude_seen)],
                                   [1 + len(body.items or [])])
        if isinstance(result, EncoderlabError):
            raise APIError(422, str(result), "user" if body.user is not None else "items", "invalid_input")
        return {"object": "list", "model": served.name,
                "data": [{"item": item, "score": float(score)} for item, score in result]}

    return app


class Observed:
    """ASGI middleware: count every response by route and status, and time it, for /metrics."""

    def __init__(self, app: Any, metrics: ServerMetrics, routes: set[str]):
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = scope["path"] if scope["path"] in self.routes else "other"  # fuzzed paths: one label
        started, status = time.perf_counter(), 500

        async def watch(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.metrics.requests.inc(route, str(status))
            self.metrics.request_seconds.observe(time.perf_counter() - started, route)


def asgi_app(app: FastAPI) -> Any:
    """The app with the body limit and the request metrics around it (outside FastAPI, so they see every
    request, refused ones included)."""
    state: ServerState = app.state.serve
    routes = {route.path for route in app.routes}
    return Observed(BodyLimit(app, state.settings.max_body_bytes), state.metrics, routes)


def run(app: FastAPI, settings: ServeSettings) -> None:
    """Serve until SIGINT / SIGTERM. Then uvicorn stops accepting connections, lets in-flight requests finish
    (at most drain_seconds), and the lifespan stops the batching queues."""
    import uvicorn

    config = uvicorn.Config(asgi_app(app), host=settings.host, port=settings.port, log_level="info",
                            timeout_graceful_shutdown=settings.drain_seconds, lifespan="on", access_log=False)
    uvicorn.Server(config).run()
