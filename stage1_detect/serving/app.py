"""Label Studio's ML backend contract over HTTP, served by FastAPI under uvicorn.

Why not the official `label-studio-ml` package: its current version is installed from GitHub
(not on PyPI, which is all these machines reach), and it brings Redis/RQ and gunicorn for
training queues we do not use. The contract it serves is small and documented, and
FastAPI/uvicorn are already installed with MLflow's server, so the backend is a small app:

- `GET /health` (and `/`): `{"status": "UP", ...}` with what is served.
- `POST /setup` (Label Studio, on connecting and before predicting): checks that the project's
  labeling config can take the detector's boxes (a 400 naming the problem when it cannot, so
  the connection fails with a reason instead of predictions silently never appearing); answers
  `{"model_version": ...}`. Its `hostname` / `access_token` are kept for fetching uploaded
  images when the environment names no server.
- `POST /predict`: `{"results": [...], "model_version": ..., "meta": {...}}`, one result per
  task in order; a task whose image cannot be read gets `[]` (no prediction) and its reason in
  `meta.tasks` and the log, never a 500.
- `POST /webhook`: annotation events are accepted and counted (`GET /metrics`); training on
  them is not offered here: pull the project (`annotate pull`) and run `stage1-detect train`.
- `GET /versions`: the one version served.
"""

from __future__ import annotations

import logging
import os
from collections import Counter

from annotate.runtime.errors import UserError
from stage1_detect.serving.predictor import Predictor

log = logging.getLogger(__name__)


def make_app(predictor: Predictor):
    """The FastAPI application serving `predictor`."""
    from fastapi import Body, FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI(title="twostage stage-1 detector (Label Studio ML backend)",
                  version=predictor.version)
    events: Counter = Counter()
    counts: Counter = Counter()

    def refused(err: UserError) -> JSONResponse:
        log.error("%s", err)
        return JSONResponse({"error": str(err)}, status_code=400)

    @app.get("/")
    @app.get("/health")
    def health() -> dict:
        return {"status": "UP", "model_class": "twostage stage-1 detector",
                **predictor.describe()}

    @app.post("/setup")
    def setup(body: dict = Body(...)):  # noqa: B008 (FastAPI's way to take a JSON body)
        predictor.images.learn(body.get("hostname"), body.get("access_token"))
        schema = body.get("schema")
        try:
            if schema:
                predictor.target(schema)
        except UserError as err:
            return refused(err)
        return {"model_version": predictor.version}

    @app.post("/predict")
    def predict(body: dict = Body(...)):  # noqa: B008
        tasks, config = body.get("tasks"), body.get("label_config")
        if not isinstance(tasks, list) or not tasks:
            return refused(UserError("/predict needs a non-empty `tasks` list"))
        if not isinstance(config, str) or not config.strip():
            return refused(UserError("/predict needs the project's `label_config`"))
        try:
            answer = predictor.predict(tasks, config)
        except UserError as err:
            return refused(err)
        counts["tasks"] += len(tasks)
        counts["failed"] += sum(1 for r in answer["meta"]["tasks"] if r["error"])
        counts["boxes"] += sum(r["boxes"] for r in answer["meta"]["tasks"])
        return answer

    @app.post("/webhook")
    def webhook(body: dict = Body(...)):  # noqa: B008
        action = str(body.get("action", "unknown"))
        events[action] += 1
        log.info("webhook: %s (training on events is not offered: annotate pull, then "
                 "stage1-detect train)", action)
        return {"status": "ok", "action": action, "training": "not offered"}

    @app.get("/versions")
    def versions() -> dict:
        return {"versions": [predictor.version]}

    @app.get("/metrics")
    def metrics() -> dict:
        return {"events": dict(events), **counts}

    return app


def serve(predictor: Predictor, host: str = "127.0.0.1", port: int = 9090) -> None:
    """Serve until interrupted (uvicorn, one worker: the model is loaded once)."""
    import uvicorn

    log.info("serving %s on http://%s:%d (pid %d)", predictor.version, host, port, os.getpid())
    uvicorn.run(make_app(predictor), host=host, port=port, log_level="info")
