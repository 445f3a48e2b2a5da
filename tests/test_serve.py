import asyncio
import contextlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import types

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from conftest import serving  # noqa: E402
from hmtl.cli import main  # noqa: E402
from hmtl.data.tokenization import tokenize  # noqa: E402
from hmtl.errors import HmtlError  # noqa: E402
from hmtl.predict import Predictor  # noqa: E402
from hmtl.serve import PredictionQueue, _listen, create_app  # noqa: E402

MAX_BODY = 4096
MAX_CHARS = 80
TEXTS = ["Ada Lovelace lived in London.", "IBM hired Grace Hopper. Paris is in France."]  # training sentences
ENTITIES = [[("Ada Lovelace", "PER"), ("London", "LOC")],
            [("IBM", "ORG"), ("Grace Hopper", "PER"), ("Paris", "LOC"), ("France", "LOC")]]


@pytest.fixture(scope="module")
def run_dir(trained_tiny_ner):
    return trained_tiny_ner


@pytest.fixture(scope="module")
def predictor(run_dir):
    return Predictor.from_serialization_dir(run_dir, max_document_chars=MAX_CHARS)


@pytest.fixture(scope="module")
def port(predictor, run_dir):
    with serving(create_app(predictor, max_body_bytes=MAX_BODY, max_batch=8, serialization_dir=run_dir)) as port:
        yield port


def call(port, method, path, body=None, headers=None):
    """(status, parsed JSON) of one request over a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def without_doc_id(document):
    return {k: v for k, v in document.items() if k != "doc_id"}


def test_health_and_info(port, predictor, run_dir):
    assert call(port, "GET", "/health") == (200, {"status": "ok"})
    status, info = call(port, "GET", "/info")
    assert status == 200
    assert info["serialization_dir"] == str(run_dir)
    assert list(info["namespaces"]) == ["tiny__ner"]
    labels = info["namespaces"]["tiny__ner"]["labels"]
    assert labels == predictor.model.tasks["ner"].labels["tiny__ner"]
    assert {"PER", "LOC", "ORG"} <= {label.split("-", 1)[-1] for label in labels}  # the corpus' types, tagged
    assert info["tasks"] == [{"name": "ner", "type": "crf_tagger", "level": "low", "datasets": ["tiny"],
                              "namespaces": ["tiny__ner"], "default_namespace": "tiny__ner"}]
    assert info["limits"]["max_body_bytes"] == MAX_BODY and info["limits"]["max_document_chars"] == MAX_CHARS


def test_predict_returns_one_document_per_text_with_consistent_offsets(port, predictor):
    status, answer = call(port, "POST", "/predict", {"texts": TEXTS})
    assert status == 200
    documents = answer["documents"]
    assert len(documents) == len(TEXTS)
    for i, (text, document) in enumerate(zip(TEXTS, documents)):
        assert document["doc_id"] == str(i) and document["text"] == text
        assert document["sentences"] == tokenize(text).sentences
        n_tokens = sum(map(len, document["sentences"]))
        for entity in document["tiny__ner"]["entities"]:
            assert 0 <= entity["start"] < entity["end"] <= n_tokens
            assert 0 <= entity["start_char"] < entity["end_char"] <= len(text)
            assert entity["text"] == text[entity["start_char"]:entity["end_char"]]
            assert entity["label"] in {"PER", "LOC", "ORG"}
        assert [(e["text"], e["label"]) for e in document["tiny__ner"]["entities"]] == ENTITIES[i]
    # exactly what the predictor answers for the same texts
    assert list(map(without_doc_id, documents)) == list(map(without_doc_id, predictor.predict(TEXTS)))


def test_namespaces_choose_the_heads(port, predictor):
    status, answer = call(port, "POST", "/predict", {"texts": TEXTS[:1], "namespaces": ["tiny__ner"]})
    assert status == 200
    (document,) = answer["documents"]
    assert "tiny__ner" in document and "ner" not in document
    assert document["tiny__ner"] == predictor.predict(TEXTS[:1], namespaces=["tiny__ner"])[0]["tiny__ner"]


@pytest.mark.parametrize("body, message", [
    ('{"texts": ["Ada"', "not valid JSON"),
    (b'{"texts": ["\xff"]}', "not UTF-8"),
    ("[1, 2]", "JSON object"),
    ({"text": ["Ada"]}, "'text'"),
    ({"namespaces": ["tiny__ner"]}, "'texts' is missing"),
    ({"texts": "Ada lived in London."}, "'texts' must be a list of texts (strings, or pre-tokenized documents"),
    ({"texts": []}, "'texts' is empty"),
    ({"texts": ["Ada", 3]}, "text 1 is a int, not a string"),
    ({"texts": ["Ada", "  \n "]}, "text 1 is empty"),
    ({"texts": ["x" * (MAX_CHARS + 1)]}, f"more than the limit of {MAX_CHARS}"),
    ({"texts": ["Ada", "a\x00b"]}, "text 1 holds NUL bytes"),  # refused by the predictor itself (HmtlError)
    ({"texts": ["Ada"], "namespaces": ["nope__ner"]}, "unknown namespace(s) nope__ner; the model has tiny__ner"),
    ({"texts": ["Ada"], "namespaces": "tiny__ner"}, "'namespaces' must be a list"),
    ({"texts": ["Ada"], "namespaces": []}, "no namespace given; the model has tiny__ner"),
    ({"texts": ["Ada"], "namespaces": "al"}, "'namespaces' must be a list of strings such as"),
    # token lists: a document is a list of sentences, so a list of strings in "texts" is no document
    ({"texts": [["Ada", "lived"]]}, "text 0 is a list but not a pre-tokenized document"),
    ({"texts": [["Ada"], ["Bob"]]}, "text 0 is a list but not a pre-tokenized document"),
    ({"texts": ["Ada", []]}, "text 1 is empty"),
    ({"texts": [[]]}, "text 0 is empty"),
    ({"texts": [[["Ada"], []]]}, "text 0: sentence 1 is empty"),
])
def test_bad_requests_are_422_with_a_one_line_message(port, body, message):
    status, answer = call(port, "POST", "/predict", body)
    assert status == 422
    assert message in answer["detail"] and "\n" not in answer["detail"]


def test_pre_tokenized_documents_and_all_heads(port, predictor):
    tokens = [["Ada", "Lovelace", "lived", "in", "London", "."], ["IBM", "hired", "Grace", "Hopper", "."]]
    status, answer = call(port, "POST", "/predict", {"texts": [tokens, TEXTS[0]], "namespaces": "all"})
    assert status == 200
    assert list(map(without_doc_id, answer["documents"])) == list(map(without_doc_id, predictor.predict_many([tokens, TEXTS[0]])))
    assert [e["text"] for e in answer["documents"][0]["tiny__ner"]["entities"]] == ["Ada Lovelace", "London", "IBM", "Grace Hopper"]


def test_bodies_over_the_limit_are_413(port):
    big = json.dumps({"texts": ["Ada lived in London."] * 400})
    assert len(big) > MAX_BODY
    status, answer = call(port, "POST", "/predict", big)
    assert status == 413 and f"{MAX_BODY:,}" in answer["detail"]
    # no Content-Length: the body actually received is measured
    chunks = (big[i:i + 500].encode() for i in range(0, len(big), 500))
    status, answer = call(port, "POST", "/predict", chunks)  # an iterable body: http.client sends it chunked
    assert status == 413 and f"{MAX_BODY:,}" in answer["detail"]
    # a body under the limit, chunked, is fine
    status, answer = call(port, "POST", "/predict", iter([b'{"texts": ', b'["Ada lived in London."]}']))
    assert status == 200 and len(answer["documents"]) == 1


def test_concurrent_requests_each_get_their_own_result(port, predictor):
    texts = [f"{name} lived in {city}." for name, city in
             zip(["Ada", "Grace", "Alan", "Emmy", "Kurt", "Marie", "Niels", "Lise"],
                 ["London", "Paris", "Zurich", "France", "Vienna", "Warsaw", "Copenhagen", "Berlin"])]
    expected = [without_doc_id(predictor.predict([text])[0]) for text in texts]
    results = [None] * len(texts)
    start = threading.Barrier(len(texts))

    def client(i):
        start.wait()
        results[i] = call(port, "POST", "/predict", {"texts": [texts[i]]})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for i, (status, answer) in enumerate(results):
        assert status == 200
        (document,) = answer["documents"]
        assert document["doc_id"] == "0" and without_doc_id(document) == expected[i]


def test_unexpected_errors_are_500_with_a_one_line_message(predictor):
    def broken(texts, namespaces=None):
        raise RuntimeError("the weights\nmelted")

    fake = types.SimpleNamespace(model=predictor.model, info=predictor.info, predict_many=broken)
    with serving(create_app(fake)) as port:
        status, answer = call(port, "POST", "/predict", {"texts": ["Ada lived in London."]})
        assert status == 500
        assert "RuntimeError" in answer["detail"] and "\n" not in answer["detail"]
        assert call(port, "GET", "/health") == (200, {"status": "ok"})  # and the server goes on


class FakePredictor:
    """Records each call; the first call waits for ``release`` so that later requests pile up."""

    def __init__(self):
        self.calls, self.release = [], threading.Event()

    def predict_many(self, texts, namespaces=None):
        self.calls.append((list(texts), namespaces))
        if len(self.calls) == 1:
            self.release.wait(10)
        if "bad" in texts:
            raise HmtlError("bad text")
        return [{"text": text, "namespaces": namespaces} for text in texts]


def test_waiting_requests_are_batched_by_namespaces_and_failures_stay_their_own():
    fake = FakePredictor()

    async def scenario():
        queue = PredictionQueue(fake, max_batch=3)
        first = asyncio.ensure_future(queue.predict(["a"], None))
        while not fake.calls:
            await asyncio.sleep(0.001)
        waiting = [asyncio.ensure_future(queue.predict(texts, namespaces)) for texts, namespaces in
                   [(["b", "c"], None), (["d"], ["x__ner"]), (["bad"], None), (["e"], None), (["f"], ["x__ner"])]]
        await asyncio.sleep(0.01)
        fake.release.set()
        results = await asyncio.gather(first, *waiting, return_exceptions=True)
        await queue.close()
        return results

    first, bc, d, bad, e, f = asyncio.run(scenario())
    assert first == [{"text": "a", "namespaces": None}]
    assert [doc["text"] for doc in bc] == ["b", "c"] and [doc["text"] for doc in e] == ["e"]
    assert [doc["text"] for doc in d] == ["d"] and [doc["text"] for doc in f] == ["f"]
    assert isinstance(bad, HmtlError)
    calls = [tuple(texts) for texts, _ in fake.calls]
    assert calls[:3] == [("a",), ("b", "c", "bad"), ("b", "c")]  # the batch failed: each of its requests alone
    assert ("d", "f") in calls  # requests for the same heads went together


def test_the_listening_socket_answers_without_delayed_ack_waits():
    """asyncio sets TCP_NODELAY only on sockets created with proto IPPROTO_TCP; without it each response of the
    CLI's server waited ~40 ms."""
    sock = _listen("127.0.0.1", 0)

    async def scenario():
        nodelay = asyncio.get_running_loop().create_future()

        def connected(reader, writer):
            nodelay.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(connected, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        try:
            return await asyncio.wait_for(nodelay, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(scenario())


def test_cli_errors_are_one_line_and_exit_2(run_dir, tmp_path, capsys, monkeypatch):
    def fails(argv):
        with pytest.raises(SystemExit) as stop:
            main(["serve", *argv])
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
        return err

    assert str(tmp_path / "missing") in fails(["--serialization_dir", str(tmp_path / "missing"), "--port", "0"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert f"127.0.0.1:{port}" in fails(["--serialization_dir", str(run_dir), "--port", str(port)])
    assert "--max_body_bytes" in fails(["--serialization_dir", str(run_dir), "--max_body_bytes", "0"])
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if it were not installed
    assert fails(["--serialization_dir", str(run_dir)]) == "error: the server needs FastAPI and uvicorn: pip install 'hmtl[serve]'"


def test_cli_serves_until_interrupted(run_dir):
    process = subprocess.Popen([sys.executable, "-m", "hmtl.serve", "--serialization_dir", str(run_dir), "--port", "0"],
                               stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while "serving" not in line:
            line = process.stderr.readline()
            assert line or process.poll() is None, "the server stopped before serving"
        port = int(line.split("http://127.0.0.1:")[1].split()[0])
        for _ in range(100):  # the socket is bound before uvicorn starts accepting on it
            with contextlib.suppress(ConnectionError):
                assert call(port, "GET", "/health") == (200, {"status": "ok"})
                break
            time.sleep(0.05)
        else:
            pytest.fail("no answer on /health")
        assert call(port, "POST", "/predict", {"texts": TEXTS[:1]})[0] == 200
    finally:
        process.send_signal(2)  # SIGINT, as Ctrl+C
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in err
