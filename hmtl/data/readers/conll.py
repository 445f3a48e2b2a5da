"""Column corpora and DyGIE JSON lines.

``conll2003`` (:class:`ColumnReader`): one token per line, columns separated by spaces or tabs, blank lines between
sentences, ``-DOCSTART-`` lines between documents (CoNLL-2003, NCBI-disease, JNLPBA's IOB2 test file, ...). The
entity column may use IOB1, IOB2, BIOES or BILOU.

``dygie`` (:class:`DygieReader`): one document per line, ``{"doc_key", "sentences", "ner", "relations",
"clusters", "events"}`` with document-level *inclusive* token offsets (SciERC, ACE05-E as DyGIE/DyGIE++ distribute
them); converted here to the end-exclusive offsets of :class:`~hmtl.data.document.Span`.
"""
from __future__ import annotations

import json
from pathlib import Path

from hmtl.data.document import Document, Event, Relation, Span
from hmtl.data.readers.base import Reader, open_text
from hmtl.data.tagging import split_tag, tags_to_spans
from hmtl.errors import DataFormatError
from hmtl.registry import READERS

DOCSTART = "-DOCSTART-"

# (line number, columns) for each token of a sentence
_Sentence = list[tuple[int, list[str]]]


def _split_columns(line: str) -> list[str]:
    """Tab-separated when the line has a tab (a token may then hold a space), else space-separated. Only ASCII
    spaces and tabs separate: a token may hold a no-break space or other Unicode space."""
    line = line.rstrip(" \t\r\n")
    if "\t" in line:
        return line.split("\t")
    return [column for column in line.split(" ") if column]


@READERS.register("conll2003")
class ColumnReader(Reader):
    """CoNLL-style column files into ``Document``s with ``entities`` (from the tag column) and ``token_tags``.

    Every non-blank line must have as many columns as the first token line and a valid tag; otherwise
    ``DataFormatError`` names the file and line.
    """

    option_help = {
        "tag_column": "index of the entity tag column (-1: the last)",
        "token_column": "index of the token column",
        "extra_columns": ('{layer name: column index} kept as token layers (a crf_tagger\'s label_layer); default: '
                          'for 4-column files (CoNLL-2003 token POS chunk NER) {"pos": 1, "chunk": 2}, for 3-column '
                          'files {"pos": 1}, otherwise none; {} keeps none'),
        "sentences_per_document": ("a file without -DOCSTART- lines is cut into documents of this many sentences "
                                   "(a file with them follows them)"),
    }

    def __init__(self, dataset: str = "", tag_column: int = -1, token_column: int = 0,
                 extra_columns: dict[str, int] | None = None, sentences_per_document: int = 100):
        super().__init__(dataset)
        if sentences_per_document < 1:
            raise ValueError(f"sentences_per_document must be at least 1, got {sentences_per_document}")
        self.tag_column = tag_column
        self.token_column = token_column
        self.extra_columns = extra_columns
        self.sentences_per_document = sentences_per_document

    def _columns_to_keep(self, path: Path, line: int, width: int) -> dict[str, int]:
        if self.extra_columns is None:
            default = {4: {"pos": 1, "chunk": 2}, 3: {"pos": 1}}.get(width, {})
            used = {self.token_column % width, self.tag_column % width}
            return {name: column for name, column in default.items() if column not in used}
        for name, column in self.extra_columns.items():
            if not -width <= column < width:
                raise DataFormatError(path, line, f"expected a column {column} for token layer {name!r}, "
                                                  f"but lines have {width} columns")
        return dict(self.extra_columns)

    def _read(self, path: Path) -> list[Document]:
        # Pass 1: sentences, grouped by -DOCSTART- lines (a group per DOCSTART; one group if there are none).
        groups: list[list[_Sentence]] = [[]]
        current: _Sentence = []
        width: int | None = None
        first_line = 0
        has_docstart = False
        with open_text(path) as lines:
            for number, line in enumerate(lines, start=1):
                columns = _split_columns(line)
                if not columns:
                    if current:
                        groups[-1].append(current)
                        current = []
                    continue
                if columns[0] == DOCSTART:
                    if current:
                        groups[-1].append(current)
                        current = []
                    if groups[-1]:
                        groups.append([])
                    has_docstart = True
                    continue
                if width is None:
                    width, first_line = len(columns), number
                    for name, column in (("token", self.token_column), ("tag", self.tag_column)):
                        if not -width <= column < width:
                            raise DataFormatError(path, number, f"expected a {name} column {column}, "
                                                                f"but the line has {width} columns: {line.rstrip()!r}")
                    if width < 2:
                        raise DataFormatError(path, number, f"expected a token and a tag column, found {line.rstrip()!r}")
                elif len(columns) != width:
                    raise DataFormatError(path, number, f"expected {width} columns like line {first_line}, "
                                                        f"found {len(columns)}: {line.rstrip()!r}")
                try:
                    split_tag(columns[self.tag_column])
                except ValueError as error:
                    raise DataFormatError(path, number, f"{error} in column {self.tag_column % width + 1} of "
                                                        f"{len(columns)} (the tag column is {self.tag_column})") from None
                current.append((number, columns))
        if current:
            groups[-1].append(current)
        groups = [group for group in groups if group]
        if not groups:
            return []
        if not has_docstart:
            whole = groups[0]
            n = self.sentences_per_document
            groups = [whole[i : i + n] for i in range(0, len(whole), n)]
        assert width is not None
        keep = self._columns_to_keep(path, first_line, width)
        stem = path.name[: -len(".gz")] if path.name.endswith(".gz") else path.name
        return [self._document(f"{stem}#{index}", group, keep) for index, group in enumerate(groups)]

    def _document(self, doc_id: str, sentences: list[_Sentence], keep: dict[str, int]) -> Document:
        document = Document(doc_id=doc_id, sentences=[[cols[self.token_column] for _, cols in s] for s in sentences])
        offset = 0
        for sentence in sentences:
            tags = [cols[self.tag_column] for _, cols in sentence]
            document.entities.extend(Span(s.start + offset, s.end + offset, s.label) for s in tags_to_spans(tags))
            offset += len(sentence)
        for name, column in keep.items():
            document.token_tags[name] = [[cols[column] for _, cols in s] for s in sentences]
        return document


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@READERS.register("dygie")
class DygieReader(Reader):
    """DyGIE / DyGIE++ JSON lines (SciERC, ACE05-E): ``sentences``; per-sentence ``ner`` ``[start, end, label]``,
    ``relations`` ``[s1, e1, s2, e2, label]`` and ``events``, each event a list whose first item is its trigger,
    ``[token, type]`` (DyGIE++) or ``[start, end, type]`` (a trigger of several tokens, as PHEE's), and whose other
    items are its arguments ``[start, end, role]``; document ``clusters`` of ``[start, end]`` mentions. Offsets
    are document-level and inclusive in the file, end-exclusive in the ``Document``.

    ``DataFormatError`` (file and line) for: invalid JSON, a record that is not an object or lacks ``sentences``,
    a span outside its sentence (``ner``, ``relations``, an event's trigger or arguments) or outside the document
    (``clusters``), a relation argument that is not an entity of that sentence, an event without a trigger or
    whose trigger or argument lacks its type or role. Blank lines are skipped; a mention listed twice in one
    cluster is kept once. ``doc_key`` becomes ``doc_id`` (``<file>#<line>`` when absent)."""

    def _read(self, path: Path) -> list[Document]:
        documents = []
        with open_text(path) as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataFormatError(path, number, f"expected one JSON object per line: {error.msg} "
                                                        f"(column {error.colno})") from None
                documents.append(self._document(path, number, record))
        return documents

    def _document(self, path: Path, number: int, record) -> Document:
        def fail(message: str):
            raise DataFormatError(path, number, message)

        if not isinstance(record, dict):
            fail(f"expected a JSON object, found {type(record).__name__}")
        if "sentences" not in record:
            fail("expected a 'sentences' key (a list of token lists)")
        sentences = record["sentences"]
        if not isinstance(sentences, list) or not all(
                isinstance(s, list) and all(isinstance(t, str) for t in s) for s in sentences):
            fail("expected 'sentences' to be a list of lists of token strings")
        for index, sentence in enumerate(sentences):
            if any(not token.strip() for token in sentence):
                fail(f"sentence {index} has an empty token at position {[t.strip() for t in sentence].index('')}")
        doc_id = record.get("doc_key")
        doc_id = str(doc_id) if doc_id is not None else f"{path.name}#{number}"
        document = Document(doc_id=doc_id, sentences=sentences)
        offsets = document.sentence_offsets() + [document.num_tokens]

        def per_sentence(key: str) -> list:
            value = record.get(key)
            if value is None:
                return [[] for _ in sentences]
            if not isinstance(value, list) or len(value) != len(sentences) or not all(isinstance(v, list) for v in value):
                fail(f"expected '{key}' to hold one list per sentence ({len(sentences)}), "
                     f"found {len(value) if isinstance(value, list) else type(value).__name__}")
            return value

        def span_in(index: int, start, end, what: str) -> tuple[int, int]:
            low, high = offsets[index], offsets[index + 1] - 1
            if not (_is_int(start) and _is_int(end)):
                fail(f"sentence {index}: expected integer offsets in {what}")
            if not low <= start <= end <= high:
                fail(f"sentence {index}: {what} is outside its sentence (tokens {low}..{high}, inclusive) "
                     f"or has its end before its start")
            return start, end + 1

        for index, items in enumerate(per_sentence("ner")):
            for item in items:
                if not (isinstance(item, list) and len(item) == 3 and isinstance(item[2], str)):
                    fail(f"sentence {index}: expected ner items [start, end, label], found {item!r}")
                start, end = span_in(index, item[0], item[1], f"entity {item!r}")
                document.entities.append(Span(start, end, item[2]))
        entities = {span.bounds: span for span in document.entities}
        for index, items in enumerate(per_sentence("relations")):
            for item in items:
                if not (isinstance(item, list) and len(item) == 5 and isinstance(item[4], str)):
                    fail(f"sentence {index}: expected relation items [s1, e1, s2, e2, label], found {item!r}")
                arguments = []
                for start, end in ((item[0], item[1]), (item[2], item[3])):
                    bounds = span_in(index, start, end, f"relation {item!r}")
                    if bounds not in entities:
                        fail(f"sentence {index}: relation {item!r} has argument [{start}, {end}], "
                             "which is not an entity in 'ner'")
                    arguments.append(entities[bounds])
                document.relations.append(Relation(arguments[0], arguments[1], item[4]))
        for index, items in enumerate(per_sentence("events")):
            for event_index, item in enumerate(items):
                document.events.append(self._event(item, index, event_index, span_in, fail))
        clusters = record.get("clusters") or []
        if not isinstance(clusters, list):
            fail("expected 'clusters' to be a list of mention lists")
        for index, cluster in enumerate(clusters):
            mentions: list[Span] = []
            for mention in cluster if isinstance(cluster, list) else [cluster]:
                if not (isinstance(mention, list) and len(mention) == 2 and all(_is_int(x) for x in mention)):
                    fail(f"cluster {index}: expected mentions [start, end], found {mention!r}")
                start, end = mention
                if not 0 <= start <= end < document.num_tokens:
                    fail(f"cluster {index}: mention {mention!r} is outside the document "
                         f"(tokens 0..{document.num_tokens - 1}) or has its end before its start")
                span = Span(start, end + 1)
                if span not in mentions:
                    mentions.append(span)
            if mentions:
                document.clusters.append(mentions)
        return document

    @staticmethod
    def _event(item, sentence: int, number: int, span_in, fail) -> Event:
        """Event ``number`` of ``sentence``, ``[[token, type] or [start, end, type], [start, end, role], ...]``."""
        where = f"sentence {sentence}: event {number}"
        if not (isinstance(item, list) and item and isinstance(item[0], list)):
            fail(f"{where}: expected [trigger, argument, ...] with the trigger [token, type] or [start, end, type], "
                 f"found {item!r}")
        trigger, *arguments = item
        if not (len(trigger) in (2, 3) and isinstance(trigger[-1], str) and trigger[-1]):
            fail(f"{where}: expected its trigger as [token, type] or [start, end, type], found {trigger!r} "
                 "(is the type missing?)")
        start, end = span_in(sentence, trigger[0], trigger[-2], f"event {number}'s trigger {trigger!r}")
        spans = []
        for argument in arguments:
            if not (isinstance(argument, list) and len(argument) == 3 and isinstance(argument[2], str) and argument[2]):
                fail(f"{where}: expected arguments [start, end, role], found {argument!r} (is the role missing?)")
            bounds = span_in(sentence, argument[0], argument[1], f"event {number}'s argument {argument!r}")
            spans.append(Span(*bounds, argument[2]))
        return Event(Span(start, end, trigger[-1]), tuple(spans))
