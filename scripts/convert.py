"""Convert any corpus a registered reader can read into BioMTL's transition-based NER formats.

    python scripts/convert.py --reader conll2003 --input data/ncbi-disease/train.tsv --output train.simple.txt \
        --format simple [--reader_options '{"sentences_per_document": 50}']

``--format simple`` writes tokens and token-level actions, ``--format simple-char`` raw sentence text with
character-offset entity actions (see ``hmtl/data/readers/transition.py``). Nested or overlapping entities are reduced
to the outermost ones; the count is printed. Errors in the input or options print one ``error: ...`` line and exit 2.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import hmtl.data.readers  # noqa: F401  (registers every reader)
from hmtl.commands import run_command
from hmtl.data.readers.transition import MODES, write_transition
from hmtl.errors import ConfigError, HmtlError
from hmtl.registry import READERS


def convert(reader: str, input_path: str, output_path: str, mode: str, reader_options: str | None = None):
    try:
        options = json.loads(reader_options) if reader_options else {}
    except json.JSONDecodeError as error:
        raise ConfigError(f"--reader_options: expected a JSON object: {error.msg} (column {error.colno})") from None
    if not isinstance(options, dict):
        raise ConfigError(f"--reader_options: expected a JSON object, found {type(options).__name__}")
    reader_class = READERS.get(reader, "--reader")
    try:
        corpus_reader = reader_class(dataset="convert", **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"--reader_options: {error}") from None
    documents = corpus_reader.read(input_path)
    output = Path(output_path)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        return write_transition(documents, output, mode)
    except OSError as error:
        raise HmtlError(f"--output: cannot write {output}: {error.strerror or error}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert a corpus to BioMTL's transition-based NER formats.")
    parser.add_argument("--reader", required=True,
                        help=f"registered reader name: {', '.join(READERS.names())}")
    parser.add_argument("--input", required=True, help="corpus file (or folder) the reader reads")
    parser.add_argument("--output", required=True, help="file to write (gzipped when it ends in .gz)")
    parser.add_argument("--format", choices=MODES, default="simple",
                        help="simple (token actions) or simple-char (character offsets)")
    parser.add_argument("--reader_options", default=None,
                        help='JSON keyword arguments for the reader, e.g. \'{"tag_column": 1}\'')
    args = parser.parse_args(argv)

    def run() -> None:
        counts = convert(args.reader, args.input, args.output, args.format, args.reader_options)
        print(f"wrote {args.output} ({args.format}): {counts.documents} documents, {counts.sentences} sentences, "
              f"{counts.entities} entities, {counts.dropped} nested or overlapping entities dropped")

    run_command(run)


if __name__ == "__main__":
    main()
