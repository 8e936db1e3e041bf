"""The server users write themselves: FastAPI + sentence-transformers, a dozen lines (the load benchmark's baseline).

    python benchmarks/st_server.py MODEL_DIR PORT THREADS
"""

import sys

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer

torch.set_num_threads(int(sys.argv[3]))
model = SentenceTransformer(sys.argv[1], device="cpu")
app = FastAPI()


class Body(BaseModel):
    input: str | list[str]
    model: str = ""


@app.post("/v1/embeddings")
def embed(body: Body) -> dict:  # a plain def: FastAPI runs it on its thread pool
    texts = [body.input] if isinstance(body.input, str) else body.input
    vectors = model.encode(texts, normalize_embeddings=True).tolist()
    return {"object": "list", "data": [{"object": "embedding", "index": i, "embedding": v}
                                       for i, v in enumerate(vectors)]}


@app.get("/ready")
def ready() -> dict:
    return {"status": "ready"}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
