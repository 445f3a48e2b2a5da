"""The demo page (``hmtl serve``'s GET /) in a real headless Chromium against a real server on a loopback port:
the answer drawn over the text, the heads picker from /info, errors as the API's one line. Skipped where no
Chromium is installed (``apt-get install chromium``)."""
import importlib.util
import types
from pathlib import Path
from urllib.parse import quote

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from conftest import serving  # noqa: E402
from hmtl.predict import with_characters  # noqa: E402
from hmtl.serve import create_app  # noqa: E402
from test_serve import MAX_CHARS, port, predictor, run_dir  # noqa: E402,F401  (the API tests' tiny model and server)

_spec = importlib.util.spec_from_file_location("headless_browser", Path(__file__).parents[1] / "scripts" / "headless_browser.py")
headless_browser = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(headless_browser)
ask = headless_browser.ask

pytestmark = pytest.mark.skipif(headless_browser.find_chromium() is None,
                                reason="no Chromium on PATH (apt-get install chromium): the demo page is tested in a real browser")

TEXT = "Ada Lovelace lived in London. IBM hired Grace Hopper."  # training sentences of the tiny model
# each mark of a head's section: its own text (without the labels drawn in it), label, class, span, hue, depth
MARKS = """[...document.querySelectorAll('section[data-namespace="%s"] mark')].map((m) => {
  const own = m.cloneNode(true);
  own.querySelectorAll('.tag').forEach((tag) => tag.remove());
  let depth = 0;
  for (let p = m.parentElement; p; p = p.parentElement) depth += p.tagName === 'MARK';
  return {text: own.textContent, label: m.dataset.label, kind: m.className, span: m.dataset.span,
          hue: m.style.getPropertyValue('--h').trim(), labelled: !!m.querySelector(':scope > .tag'), depth};
})"""


@pytest.fixture(scope="module")
def browser():
    with headless_browser.Browser() as browser:
        yield browser


@pytest.fixture(scope="module")
def page(port):
    return f"http://127.0.0.1:{port}/"


def marks(browser, namespace: str) -> list[dict]:
    return browser.evaluate(MARKS % namespace)


def test_a_real_models_entities_are_drawn_over_the_text(browser, page):
    browser.open(page + "?text=" + quote(TEXT), network=True)  # predicts on load
    browser.wait_for("document.body.dataset.runs === '1'")
    assert browser.evaluate("document.getElementById('error').hidden")
    assert [(m["text"], m["label"]) for m in marks(browser, "tiny__ner")] == [
        ("Ada Lovelace", "PER"), ("London", "LOC"), ("IBM", "ORG"), ("Grace Hopper", "PER")]
    drawn = "(() => { const p = document.querySelector('section p.text').cloneNode(true); " \
            "p.querySelectorAll('.tag').forEach((t) => t.remove()); return p.textContent; })()"
    assert browser.evaluate(drawn) == TEXT  # the whole text, the entities in place
    heads = "[...document.querySelectorAll('#heads input')].map((box) => [box.value, box.checked])"
    assert browser.evaluate(heads) == [["tiny__ner", True]]  # the picker, from /info
    assert float(browser.evaluate("document.getElementById('result').dataset.ms")) > 0
    urls = browser.requested_urls()
    assert {page, page + "info", page + "predict"} <= {url.split("?")[0] for url in urls}
    assert all(url.startswith(page) or url.startswith("data:") for url in urls), urls  # nothing from outside


def test_errors_are_the_apis_one_line_message(browser, page):
    browser.open(page)
    browser.wait_for("document.querySelectorAll('#heads input').length")
    assert ask(browser, " \n ") == "text 0 is empty"
    assert browser.evaluate("document.getElementById('result').childElementCount") == 0
    error = ask(browser, "x" * (MAX_CHARS + 1))
    assert f"more than the limit of {MAX_CHARS}" in error and "\n" not in error
    browser.evaluate("document.querySelector('#heads input').checked = false")
    assert ask(browser, TEXT).startswith("no namespace given; the model has tiny__ner")
    browser.evaluate("document.querySelector('#heads input').checked = true")
    assert ask(browser, TEXT) is None  # and the page goes on working


def test_a_server_that_is_gone_is_one_line_not_a_blank_page(browser, predictor):
    with serving(create_app(predictor)) as port:
        browser.open(f"http://127.0.0.1:{port}/")
        browser.wait_for("document.querySelectorAll('#heads input').length")
    error = ask(browser, TEXT)
    assert error.startswith(f"the server at 127.0.0.1:{port} does not answer") and "hmtl serve" in error
    assert browser.evaluate("document.getElementById('text').value") == TEXT  # the form stays, with its text


# ------------------------------------------------------------------ every layer the heads output
HIERARCHY_TEXT = "The Countess of Lovelace lived in London. She met Charles Babbage there."


def hierarchy_answer(document) -> dict:
    """What the full hierarchy's heads answer for HIERARCHY_TEXT, token spans made into the API's spans by the
    predictor's own ``with_characters``; one crossing mention (``Lovelace lived``) too."""
    def span(surface, label=None):
        start = document.text.index(surface)
        starts, ends = [s for s, _ in document.char_offsets], [e for _, e in document.char_offsets]
        return {"start": starts.index(start), "end": ends.index(start + len(surface)) + 1, **({"label": label} if label else {})}

    def spans(values):
        return with_characters(values, document)

    countess, london = span("The Countess of Lovelace", "PER"), span("London", "LOC")
    return {
        "doc_id": "0", "text": document.text, "sentences": document.sentences,
        "gum__emd": {"mentions": spans([countess, span("Lovelace", "GPE"), span("Lovelace lived", "EVT"), london,
                                        span("Charles Babbage", "PER")])},
        "conll04__relation": {"entities": spans([countess, london]),
                              "relations": spans([{"head": countess, "tail": london, "label": "Live_In"}])},
        "ontogum__coref": {"clusters": spans([[span("The Countess of Lovelace"), span("She")], [span("London"), span("there")]])},
        "phee__event": {"events": spans([{"trigger": span("met", "Meet"),
                                          "arguments": [span("She", "Agent"), span("Charles Babbage", "Person")]}])},
        "ade__classifier": {"sentence_labels": [{"sentence": 0, "labels": ["biography"], "probabilities": {"biography": 0.9}},
                                                {"sentence": 1, "labels": [], "probabilities": {"biography": 0.2}}]},
        "conll03__pos": {"tags": [["DT", "NNP", "IN", "NNP", "VBD", "IN", "NNP", "."], ["PRP", "VBD", "NNP", "NNP", "RB", "."]]},
    }


@pytest.fixture(scope="module")
def hierarchy_page(predictor):
    """A server whose predictor answers with every kind of layer (the tiny model has an NER head only)."""
    answer = hierarchy_answer(predictor.documents([HIERARCHY_TEXT])[0])
    heads = {ns: ns.split("__")[1] for ns in answer if "__" in ns}
    types_ = {"emd": "span_classifier", "relation": "relation", "coref": "coreference", "event": "event",
              "classifier": "classifier", "pos": "crf_tagger"}
    info = {"tasks": [{"name": task, "type": types_[task], "level": "top", "datasets": [ns.split("__")[0]],
                       "namespaces": [ns], "default_namespace": ns} for ns, task in heads.items()],
            "namespaces": {ns: {"task": task, "labels": []} for ns, task in heads.items()},
            "limits": {"max_document_chars": 1000, "batch_size": 32}}
    stand_in = types.SimpleNamespace(info=lambda: info, predict_many=lambda texts, namespaces=None: [answer for _ in texts])
    with serving(create_app(stand_in)) as port:
        yield f"http://127.0.0.1:{port}/"


def test_every_layer_of_the_hierarchy_is_drawn(browser, hierarchy_page):
    browser.open(hierarchy_page + "?namespaces=all&text=" + quote(HIERARCHY_TEXT))
    browser.wait_for("document.body.dataset.runs === '1'")
    assert browser.evaluate("[...document.querySelectorAll('section')].map((s) => s.dataset.namespace)") == [
        "gum__emd", "conll04__relation", "ontogum__coref", "phee__event", "ade__classifier", "conll03__pos"]

    # nested mentions inside the outer one; the crossing one cut where its parent ends, labelled once
    emd = {(m["text"], m["depth"], m["labelled"]): m["label"] for m in marks(browser, "gum__emd")}
    assert emd == {("The Countess of Lovelace", 0, True): "PER", ("Lovelace", 1, True): "EVT", ("Lovelace", 2, True): "GPE",
                   (" lived", 0, False): "EVT", ("London", 0, True): "LOC", ("Charles Babbage", 0, True): "PER"}

    # a relation is a line of the list that outlines its two spans
    assert browser.evaluate("document.querySelector('ul.relations li').textContent") == "The Countess of Lovelace—Live_In→London"
    outlined = ("(() => { const li = document.querySelector('ul.relations li'); li.dispatchEvent(new FocusEvent('focus'));"
                " return [...document.querySelectorAll('mark.linked')].map((m) => m.dataset.span); })()")
    assert browser.evaluate(outlined) == ["0-24", "34-40"]

    # a coreference chain is one colour, another chain another
    chains = [(m["text"], m["label"], m["hue"]) for m in marks(browser, "ontogum__coref")]
    assert [(text, label) for text, label, _ in chains] == [
        ("The Countess of Lovelace", "#1"), ("London", "#2"), ("She", "#1"), ("there", "#2")]
    assert chains[0][2] == chains[2][2] != chains[1][2] == chains[3][2]

    # an event: its trigger and its arguments with their roles, in the event's colour
    event = [(m["text"], m["label"], m["kind"]) for m in marks(browser, "phee__event")]
    assert event == [("She", "Agent", "span argument"), ("met", "Meet", "span trigger"),
                     ("Charles Babbage", "Person", "span argument")]
    assert len({m["hue"] for m in marks(browser, "phee__event")}) == 1

    # sentence labels over their sentences; token tags over their tokens
    assert [(m["text"], m["label"]) for m in marks(browser, "ade__classifier")] == [
        ("The Countess of Lovelace lived in London.", "biography"), ("She met Charles Babbage there.", "(no label)")]
    tags = [(m["text"], m["label"]) for m in marks(browser, "conll03__pos")]
    assert tags[:2] == [("The", "DT"), ("Countess", "NNP")] and tags[-1] == (".", ".") and len(tags) == 14
