"""predict.py on big input, for docs/BENCHMARKS.md: a ~5 MB text file of one document per line, and the same text
as a single line (one 5 MB document). Reports wall time, time to the first document written, documents written and
peak RSS of each predict.py process.

    python scripts/bench_big_input.py --serialization_dir runs/small --output_dir out/big_input [--megabytes 5]

The text is CoNLL-2003's training sentences (``${HMTL_DATA_DIR:-data}``), detokenized and packed into lines of
about 540 characters, cycled until the size is reached.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hmtl.data.readers.conll import ColumnReader  # noqa: E402


def make_text(megabytes: float) -> list[str]:
    documents = ColumnReader().read(Path(os.environ.get("HMTL_DATA_DIR", "data")) / "conll2003" / "eng.train.gz")
    sentences = [" ".join(s) for d in documents for s in d.sentences if len(s) > 3]
    lines, line, size, i = [], [], 0, 0
    while size < megabytes * 1_000_000:
        line.append(sentences[i % len(sentences)])
        i += 1
        if sum(map(len, line)) >= 540:
            lines.append(" ".join(line))
            size += len(lines[-1]) + 1
            line = []
    return lines


def run(serialization_dir: str, input_file: Path, output_file: Path, extra: list[str]) -> dict:
    """One predict.py process: wall seconds, seconds to its first written document, its peak RSS, exit code."""
    output_file.unlink(missing_ok=True)
    command = [sys.executable, str(ROOT / "predict.py"), "--serialization_dir", serialization_dir,
               "--input_file", str(input_file), "--output_file", str(output_file), *extra]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first, peak = None, 0
    while process.poll() is None:
        if first is None and output_file.exists() and output_file.stat().st_size > 0:
            first = time.perf_counter() - started
        peak = max(peak, high_water_mark_mb(process.pid))
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace").strip().splitlines()
    written = sum(1 for _ in output_file.open()) if output_file.exists() else 0
    return {"input": input_file.name, "exit_code": process.returncode, "seconds": round(seconds, 1),
            "seconds_to_first_document": None if first is None else round(first, 1),
            "documents_written": written, "peak_rss_mb": peak, "last_stderr_line": stderr[-1] if stderr else ""}


def high_water_mark_mb(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM, Linux), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serialization_dir", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--megabytes", type=float, default=5.0)
    args = parser.parse_args()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = make_text(args.megabytes)
    many, one = out / "many_lines.txt", out / "one_line.txt"
    many.write_text("\n".join(lines) + "\n")
    one.write_text(" ".join(lines) + "\n")
    results = {"megabytes": round(many.stat().st_size / 1e6, 2), "lines": len(lines), "runs": []}
    for input_file in (one, many):
        result = run(args.serialization_dir, input_file, out / f"{input_file.stem}.jsonl", [])
        results["runs"].append(result)
        print(json.dumps(result))
    (out / "big_input.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
