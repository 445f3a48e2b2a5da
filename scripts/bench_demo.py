"""The demo page's speed as a user sees it: starts ``hmtl serve`` on a free loopback port, opens its page (GET /) in
headless Chromium, submits a text ``--repeats`` times and prints, as JSON, the time from pressing the button to the
answer drawn on screen (p50/p95 ms, measured by the page: two animation frames after the answer is in the page)
and the part of it spent waiting for the server's answer. ``--screenshot`` also saves the page with the last answer.

    python scripts/bench_demo.py --serialization_dir out/sample --repeats 20
    python scripts/bench_demo.py --serialization_dir out/sample --repeats 1 --text "..." --screenshot docs/img/demo.png
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys

from bench_serve import percentile, start_server, stop_server
from headless_browser import Browser, ask

# ~1,000 characters of the bundled sample corpus' training documents
DEFAULT_TEXT = (
    "Mara Ellison, the chief executive of Halden Biotech, said on Monday that she would open a new laboratory in "
    "Leeds. Halden, which is based in Cambridge, expects the site to employ 200 people by next year. Ellison told "
    "reporters that her team had spent two years looking for the right building. Tomas Reyes, a fisherman who lives "
    "in Vigo, won the Atlantic Rowing Prize on Saturday. He crossed the finish line in Lisbon, a city he had never "
    "visited before. Vigo is a port in Spain, and its mayor promised the rower a parade. Shares in Norland Energy "
    "fell 4 percent after the Oslo company cut its forecast. Analysts at Brightwater Capital said the decision "
    "surprised investors. Norland said it would name a new chief executive in March. Priya Natarajan has joined "
    "Kestrel Airlines as head of safety. Natarajan previously worked for the European aviation regulator in "
    "Cologne, where she still lives. Kestrel, based in Dublin, flies to 40 cities. Heavy rain closed roads across "
    "Cumbria on Tuesday, and officials said the county could see more flooding.")


def submit(browser: Browser, text: str) -> dict:
    """One press of the button: the page's own timings, and how much it drew."""
    error = ask(browser, text)
    if error:
        sys.exit(f"the page shows an error: {error}")
    return browser.evaluate("({ms: Number(document.getElementById('result').dataset.ms), "
                            "answer_ms: Number(document.getElementById('result').dataset.answerMs), "
                            "marks: document.querySelectorAll('#result mark').length})")


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50": round(percentile(ordered, 50), 1), "p95": round(percentile(ordered, 95), 1),
            "mean": round(statistics.fmean(ordered), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serialization_dir", default="out")
    parser.add_argument("--text", default=DEFAULT_TEXT, help="the text submitted (default: ~1,000 characters)")
    parser.add_argument("--namespaces", default="all", help="the heads ticked: all, or a comma-separated list")
    parser.add_argument("--repeats", type=int, default=20, help="submissions measured")
    parser.add_argument("--warmup", type=int, default=2, help="submissions first, not measured")
    parser.add_argument("--screenshot", help="save a PNG of the page with the last answer here")
    parser.add_argument("--width", type=int, default=1000, help="the page's width in pixels")
    parser.add_argument("--batch_size", type=int, default=None, help="passed to hmtl serve")
    parser.add_argument("--start_timeout", type=float, default=300, help="seconds to wait for the server")
    args = parser.parse_args()
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be positive and --warmup not negative")

    process, port, _ = start_server(args)
    try:
        with Browser(width=args.width, height=700) as browser:
            browser.open(f"http://127.0.0.1:{port}/?namespaces={args.namespaces}")
            browser.wait_for("document.querySelectorAll('#heads input').length")
            for _ in range(args.warmup):
                submit(browser, args.text)
            timings = [submit(browser, args.text) for _ in range(args.repeats)]
            if args.screenshot:
                browser.screenshot(args.screenshot)
    finally:
        stop_server(process)
    print(json.dumps({"serialization_dir": args.serialization_dir, "text_chars": len(args.text), "namespaces": args.namespaces,
                      "repeats": args.repeats, "marks_drawn": timings[-1]["marks"],
                      "submit_to_drawn_ms": summary([t["ms"] for t in timings]),
                      "of_which_answer_ms": summary([t["answer_ms"] for t in timings])}, indent=2))


if __name__ == "__main__":
    main()
