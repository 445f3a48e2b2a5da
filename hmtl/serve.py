"""``hmtl serve``: a trained model over HTTP (FastAPI + uvicorn, the ``serve`` extra).

    POST /predict  {"texts": ["...", [["Pre", "tokenized"], ["."]], ...], "namespaces": ["conll03__ner"] or "all"}
                   ->  {"documents": [{...}, ...]}
    GET  /health   {"status": "ok"}
    GET  /info     tasks, namespaces and their labels, serialization dir, limits
    GET  /         the demo page (hmtl/static/demo.html): a text box over /predict, the answer drawn over the text

The model is loaded once. It is not thread-safe and uses every CPU thread, so predictions run one at a time on a
single worker thread; requests that arrive while it is busy wait in a queue, and those waiting together (with the
same ``namespaces``) go to the model as one call of up to ``max_batch`` texts.
"""
# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations (``request: Request``) at run
# time, and Request is imported inside create_app so that this module imports without the serve extra.
import argparse
import asyncio
import collections
import concurrent.futures
import contextlib
import errno
import json
import logging
import socket
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hmtl.errors import HmtlError

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
MAX_BATCH = 32
INSTALL_HINT = "the server needs FastAPI and uvicorn: pip install 'hmtl[serve]'"
# the demo page may run its own inline script and styles and talk to this server, nothing else: it works offline
DEMO_PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
                    "img-src data:; base-uri 'none'; form-action 'none'")


def _require_server_stack() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise HmtlError(INSTALL_HINT) from None


class RequestError(Exception):
    """What is wrong with a request, as the one-line ``detail`` of its error response."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def parse_predict_body(body: bytes) -> tuple[list, list[str] | str | None]:
    """The texts and namespaces of a ``POST /predict`` body; a RequestError (422) names what is wrong with its
    shape. What is wrong with a text or a namespace the predictor itself reports (HmtlError, also 422)."""
    try:
        data = json.loads(body)
    except UnicodeDecodeError as error:
        raise RequestError(422, f"the body is not UTF-8 (byte {error.start}: {error.reason})") from None
    except json.JSONDecodeError as error:
        raise RequestError(422, f"the body is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    if not isinstance(data, dict):
        raise RequestError(422, 'the body must be a JSON object: {"texts": ["..."], "namespaces": [...] or "all" (optional)}')
    unknown = sorted(set(data) - {"texts", "namespaces"})
    if unknown:
        raise RequestError(422, f"unknown field(s) {', '.join(map(repr, unknown))}; expected 'texts' and optionally 'namespaces'")
    if "texts" not in data:
        raise RequestError(422, "'texts' is missing: send {\"texts\": [\"...\"]}")
    texts = data["texts"]
    if not isinstance(texts, list):
        raise RequestError(422, "'texts' must be a list of texts (strings, or pre-tokenized documents: lists of "
                                f"sentences of tokens), got {_json_type(texts)}")
    if not texts:
        raise RequestError(422, "'texts' is empty: send at least one text")
    namespaces = data.get("namespaces")
    if namespaces not in (None, "all") and (not isinstance(namespaces, list) or not all(isinstance(ns, str) for ns in namespaces)):
        raise RequestError(422, "'namespaces' must be a list of strings such as [\"conll03__ner\"], \"all\", or left out")
    return texts, namespaces


def _json_type(value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


@dataclass
class _Job:
    texts: list
    namespaces: list[str] | str | None
    future: asyncio.Future

    @property
    def key(self) -> tuple[str, ...] | str | None:
        return self.namespaces if self.namespaces is None or isinstance(self.namespaces, str) else tuple(self.namespaces)


class PredictionQueue:
    """Runs ``predictor.predict_many`` one call at a time on one thread; jobs waiting together with the same namespaces
    are merged into one call of up to ``max_batch`` texts (a job with more texts runs alone, whole)."""

    def __init__(self, predictor, max_batch: int = MAX_BATCH):
        if max_batch < 1:
            raise HmtlError(f"max_batch: expected a positive number of texts, got {max_batch}")
        self.predictor = predictor
        self.max_batch = max_batch
        self._pending: collections.deque[_Job] = collections.deque()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hmtl-predict")
        self._worker: asyncio.Task | None = None
        self._wakeup: asyncio.Event | None = None

    async def predict(self, texts: list, namespaces: list[str] | str | None) -> list[dict]:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done():  # started lazily, inside the server's event loop
            self._wakeup = asyncio.Event()
            self._worker = loop.create_task(self._work())
        job = _Job(list(texts), namespaces, loop.create_future())
        self._pending.append(job)
        self._wakeup.set()
        return await job.future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _take(self) -> list[_Job]:
        """The next call's jobs: the oldest waiting job and the later ones with its namespaces, up to max_batch texts."""
        while self._pending and self._pending[0].future.done():  # its client went away
            self._pending.popleft()
        if not self._pending:
            return []
        first = self._pending.popleft()
        jobs, size, rest = [first], len(first.texts), collections.deque()
        while self._pending:
            job = self._pending.popleft()
            if not job.future.done() and job.key == first.key and size + len(job.texts) <= self.max_batch:
                jobs.append(job)
                size += len(job.texts)
            elif not job.future.done():
                rest.append(job)
        self._pending = rest
        return jobs

    async def _work(self) -> None:
        while True:
            jobs = self._take()
            if not jobs:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            try:
                results = await self._call([text for job in jobs for text in job.texts], jobs[0].namespaces)
            except Exception as error:
                if len(jobs) == 1:
                    _settle(jobs[0].future, error=error)
                    continue
                for job in jobs:  # one request's failure must not fail the others it was batched with
                    try:
                        _settle(job.future, await self._call(job.texts, job.namespaces))
                    except Exception as alone:
                        _settle(job.future, error=alone)
                continue
            start = 0
            for job in jobs:
                _settle(job.future, results[start:start + len(job.texts)])
                start += len(job.texts)

    async def _call(self, texts: list, namespaces: list[str] | str | None) -> list[dict]:
        results = await asyncio.get_running_loop().run_in_executor(self._executor, self.predictor.predict_many, texts, namespaces)
        if not isinstance(results, list) or len(results) != len(texts):
            raise RuntimeError(f"predictor.predict_many returned {type(results).__name__} for {len(texts)} texts, "
                               "expected a list with one document per text")
        return results


def _settle(future: asyncio.Future, result=None, error: BaseException | None = None) -> None:
    if future.done():  # cancelled: its client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def create_app(predictor, max_body_bytes: int = MAX_BODY_BYTES, max_batch: int = MAX_BATCH, *,
               serialization_dir: str | Path | None = None):
    """The FastAPI app serving ``predictor`` (an ``hmtl.predict.Predictor``)."""
    _require_server_stack()
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.requests import ClientDisconnect

    if max_body_bytes < 1:
        raise HmtlError(f"max_body_bytes: expected a positive number of bytes, got {max_body_bytes}")
    queue = PredictionQueue(predictor, max_batch)
    directory = serialization_dir if serialization_dir is not None else getattr(predictor, "serialization_dir", None)
    info = {**predictor.info(), "serialization_dir": None if directory is None else str(directory)}
    info["limits"] = {**info["limits"], "max_body_bytes": max_body_bytes, "max_batch": max_batch}
    demo_page = resources.files("hmtl").joinpath("static/demo.html").read_text(encoding="utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await queue.close()

    app = FastAPI(title="hmtl", description="Hierarchical multi-task information extraction", lifespan=lifespan)
    app.state.queue = queue

    def error(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": _one_line(detail)}, status_code=status)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                declared_size = int(declared)
            except ValueError:
                raise RequestError(400, f"Content-Length {declared!r} is not a number") from None
            if declared_size > max_body_bytes:
                raise RequestError(413, f"the body has {declared_size:,} bytes, more than the limit of {max_body_bytes:,}")
        chunks, size = [], 0
        async for chunk in request.stream():  # the body actually sent, chunked or lying about its length
            size += len(chunk)
            if size > max_body_bytes:
                raise RequestError(413, f"the body is over the limit of {max_body_bytes:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @app.get("/", include_in_schema=False)
    async def demo() -> HTMLResponse:
        return HTMLResponse(demo_page, headers={"Content-Security-Policy": DEMO_PAGE_POLICY})

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/info")
    async def get_info() -> dict:
        return info

    @app.post("/predict")
    async def predict(request: Request):
        try:
            body = await read_body(request)
            texts, namespaces = parse_predict_body(body)
            documents = await queue.predict(texts, namespaces)
        except RequestError as problem:
            return error(problem.status, problem.detail)
        except ClientDisconnect:  # gone before its body was read: nobody to answer
            logger.info("POST /predict: the client went away before sending its whole body")
            return Response(status_code=400)
        except HmtlError as problem:  # what the predictor refuses: an empty or too long text, an unknown namespace
            return error(422, str(problem))
        except Exception as problem:
            logger.exception("POST /predict failed")
            return error(500, f"internal error ({type(problem).__name__}: {problem}); see the server log")
        # a text's doc_id is its position in the request, whichever texts it was batched with
        return {"documents": [{**document, "doc_id": str(i)} for i, document in enumerate(documents)]}

    return app


def _listen(host: str, port: int) -> socket.socket:
    """A bound socket for host:port, so a port in use is a one-line error before the model loads."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto given explicitly: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP (with 0, every
    # response waits ~40 ms for a delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        reason = error.strerror or str(error)
        if isinstance(error, socket.gaierror):
            raise HmtlError(f"--host: cannot resolve {host!r} ({reason})") from None
        if error.errno == errno.EADDRINUSE:
            raise HmtlError(f"--port: {host}:{port} is in use (another server?); choose another --port") from None
        raise HmtlError(f"--host/--port: cannot listen on {host}:{port} ({reason})") from None
    return sock


def serve_main(argv: list[str] | None = None) -> None:
    from hmtl.commands import run_command

    parser = argparse.ArgumentParser(description="Serve a trained model over HTTP: POST /predict, GET /health, GET /info.")
    parser.add_argument("--serialization_dir", default="out", help="the training run whose best model is served (default: out)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000; 0 picks a free one)")
    parser.add_argument("--batch_size", type=int, default=None, help="sentences per forward pass (default: the predictor's, 32)")
    parser.add_argument("--device", default="auto", help="auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N")
    parser.add_argument("--max_body_bytes", type=int, default=MAX_BODY_BYTES,
                        help=f"refuse request bodies larger than this with 413 (default {MAX_BODY_BYTES:,})")
    parser.add_argument("--max_document_chars", type=int, default=None,
                        help="refuse texts longer than this with 422 (default: the predictor's, 200,000)")
    args = parser.parse_args(argv)

    def main() -> None:
        from hmtl.predict import Predictor, check_limits

        check_limits("--", batch_size=args.batch_size, max_body_bytes=args.max_body_bytes,
                     max_document_chars=args.max_document_chars)
        if not 0 <= args.port <= 65535:
            raise HmtlError(f"--port: expected 0 to 65535, got {args.port}")
        _require_server_stack()
        import uvicorn

        sock = _listen(args.host, args.port)  # before the model loads: a port in use fails at once
        try:
            limits = {k: v for k, v in (("batch_size", args.batch_size), ("max_document_chars", args.max_document_chars))
                      if v is not None}
            predictor = Predictor.from_serialization_dir(args.serialization_dir, device=args.device, **limits)
            app = create_app(predictor, args.max_body_bytes, serialization_dir=args.serialization_dir)
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            print(f"serving {args.serialization_dir} on http://{shown}:{port} (demo page at /; POST /predict, GET /health, GET /info); "
                  "Ctrl+C stops", file=sys.stderr, flush=True)
            try:
                uvicorn.Server(uvicorn.Config(app, log_level="info")).run(sockets=[sock])
            except KeyboardInterrupt:  # uvicorn stops gracefully on Ctrl+C, then passes the signal on
                pass
        finally:
            sock.close()

    run_command(main)


if __name__ == "__main__":
    serve_main()
