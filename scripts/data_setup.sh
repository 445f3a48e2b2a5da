#!/usr/bin/env bash
# Fills the data folder with the open corpora the configs and tests use, in the layout the readers expect:
#   conll2003/ scierc/ conll04/ gum/ litbank/ ud_english_ewt/ ncbi-disease/ jnlpba/ phee/ ade/
#
#   bash scripts/data_setup.sh [--force] [--verify] [--list] [CORPUS ...]
#
# Where to:   $HMTL_DATA_DIR (relative paths are relative to the current directory), else <repo>/data.
# Where from: $HMTL_DATA_MIRROR when set (a folder with the same layout, e.g. CI's ../shared/data): copied.
#             Otherwise each corpus is downloaded from the public repository and commit its README names
#             (GitHub raw files and tarballs; needs curl, tar, gzip and python3) and checked against a digest of
#             the reference copy.
# Idempotent: a corpus folder that is already there is left alone (--force fetches it again); a corpus is
# assembled in a hidden folder and moved into place only when complete. --verify checks the digests of what is
# there. CORPUS names limit the run to those corpora. Licenses differ per corpus: CoNLL-2003 is research-only
# (Reuters text), see each README.
set -euo pipefail

CORPORA=(conll2003 scierc conll04 gum litbank ud_english_ewt ncbi-disease jnlpba phee ade)

# sha256 over "<sha256 of the uncompressed content>  <path>" lines of every file but README.md, sorted by path:
# the reference copy's digests, so that a download or a mirror can be checked byte for byte.
declare -A DIGEST=(
  [conll2003]=7d7ac94e97ecf05288a1b3861446406c76e0e3b53a76214ad49747559a8fdc0f
  [scierc]=d8a961818b8488181a77f7909cde122316fd8a81bbab2c99462448a4d5f8099a
  [conll04]=be45a935763d15c974827411b1f6e6d6b38fec9fa4fba3e766bb64033dee2f89
  [gum]=6c91cad9371b323a6520f5a346585f4b4ea7ca75d719a11647dc83774ccb2154
  [litbank]=5576f4143848673a5ad19cebc94cbd7c842730661c81d0d71a5b3ef42e1b17ad
  [ud_english_ewt]=9eaeb5702bf8517d3b8407c404ece3b2b7f76f70084b473d2b42c8971784d21c
  [ncbi-disease]=c3ea7e67403b6ff893c60b3d5e0e61d1934697ba7a5835a833a5658d29511a17
  [jnlpba]=07a424a79a5bfc937ae4282df6f6a56502f5ead9204c1da36707bc3bd1d397df
  [phee]=e00107eb602c5d02827b87baa79e2c7cd66af619025dedaccbaf23cbb9afd6e2
  [ade]=5db013d163371c6f802e21fd264c4e91be78dbda9cec789b4f57c8422184b212
)

RAW=https://raw.githubusercontent.com
PYTHON=${PYTHON:-python3}

# ------------------------------------------------------------------------------------------------ helpers

fetch() {  # URL FILE
  echo "  get $1"
  curl -fsSL --retry 3 --retry-delay 2 -o "$2" "$1"
}

tarball() {  # OWNER/REPO COMMIT FOLDER PATTERN... : extract the matching members of the repository at COMMIT
  local repo=$1 commit=$2 folder=$3
  shift 3
  echo "  get https://codeload.github.com/$repo/tar.gz/$commit ($*)"
  mkdir -p "$folder"
  curl -fsSL --retry 3 --retry-delay 2 "https://codeload.github.com/$repo/tar.gz/$commit" \
    | tar -xz -C "$folder" --strip-components=1 --wildcards "$@"
}

strip_trailing_blank_lines() {  # FILE
  awk 'NF { while (blank > 0) { print ""; blank-- } print; next } { blank++ }' "$1"
}

digest() {  # FOLDER
  (cd "$1" && find . -type f ! -name README.md | LC_ALL=C sort | while IFS= read -r file; do
    case "$file" in
      *.gz) gzip -dc -- "$file" ;;
      *) cat -- "$file" ;;
    esac | sha256sum | sed "s|-\$|$file|"
  done) | sha256sum | cut -d' ' -f1
}

verify() {  # CORPUS FOLDER
  local got
  got=$(digest "$2")
  if [ "$got" = "${DIGEST[$1]}" ]; then
    echo "  verified: identical to the reference copy"
  else
    echo "  WARNING: $1 differs from the reference copy (digest $got); the counts in its README may not apply" >&2
  fi
}

# ------------------------------------------------------------------------------------------------ downloads
# Each runs inside the (empty) folder being assembled.

fetch_conll2003() {
  # aidamd/NER: eng.train and eng.testa with CRLF line endings (its eng.testb has no NER column)
  local aidamd=$RAW/aidamd/NER/5d32721e0abde2599c09351f4a5f1c7824f90904/data
  fetch "$aidamd/eng.train" eng.train.crlf
  tr -d '\r' < eng.train.crlf | gzip -9n > eng.train.gz
  fetch "$aidamd/eng.testa" eng.testa.crlf
  tr -d '\r' < eng.testa.crlf > eng.testa
  # ZhixiuYe/HSCRF-pytorch: labelled eng.testb, whose first "-DOCSTART-" line was moved to the end: move it back
  fetch "$RAW/ZhixiuYe/HSCRF-pytorch/86bb64890317b74517c5ad44b47c66635df327d8/data/eng.testb" eng.testb.moved
  tr -d '\r' < eng.testb.moved > eng.testb.lf
  if head -n 1 eng.testb.lf | grep -q '^-DOCSTART-'; then
    mv eng.testb.lf eng.testb
  else
    local last
    last=$(grep -n '^-DOCSTART-' eng.testb.lf | tail -n 1 | cut -d: -f1)
    { printf '%s\n\n' "$(sed -n "${last}p" eng.testb.lf)"; sed "${last}d" eng.testb.lf; } > eng.testb
  fi
  rm -f eng.train.crlf eng.testa.crlf eng.testb.moved eng.testb.lf
}

fetch_scierc() {
  # allenai/scibert history (removed at HEAD): the DyGIE JSON lines of SciERC, unchanged
  local split
  for split in train dev test; do
    fetch "$RAW/allenai/scibert/5948472810bfc3882129b477bfcc452be903ce15/data/ner/sciie/raw/$split.json" "$split.json"
  done
}

fetch_conll04() {
  local base=$RAW/LorrinWWW/two-are-better-than-one/a75de25e436a02f58bc512de2f841d621be40daa/datasets/unified
  fetch "$base/train.CoNLL04.json" train.json
  fetch "$base/valid.CoNLL04.json" dev.json
  fetch "$base/test.CoNLL04.json" test.json
  fetch "$RAW/YoumiMa/TablERT-CNN/055333c2b0dfff48fbab8fa73367cc0766c89862/data/datasets/conll04/conll04_types.json" \
    conll04_types.json
}

fetch_ncbi_disease() {
  local split
  for split in train devel test; do
    fetch "$RAW/cambridgeltl/MTL-Bioinformatics-2016/df0df02fae6dbb87d88ffcf323b9096528f06f84/data/NCBI-disease-IOB/$split.tsv" \
      "$split.tsv"
  done
}

fetch_ud_english_ewt() {
  # The released split files at the commit the README names (the reference copy assembled train from
  # not-to-release/sources/ in the order of files.train, which is how the released file is built).
  local split
  for split in train dev test; do
    fetch "$RAW/UniversalDependencies/UD_English-EWT/15d613d8447b3478787d4c278730a1e48a945efb/en_ewt-ud-$split.conllu" \
      "en_ewt-ud-$split.conllu"
    gzip -9n "en_ewt-ud-$split.conllu"
  done
}

fetch_litbank() {
  tarball dbamman/litbank 3e50db0ffc033d7ccbb94f4d88f6b99210328ed8 src \
    '*/entities/tsv/*.tsv' '*/coref/tsv/*' '*/coref/conll/*.conll'
  mkdir -p entities/tsv coref/tsv coref/conll splits
  cp src/entities/tsv/*.tsv entities/tsv/
  cp src/coref/tsv/*.ann src/coref/tsv/*.txt coref/tsv/
  local file
  for file in src/coref/conll/*.conll; do
    gzip -9nc "$file" > "coref/conll/$(basename "$file").gz"
  done
  tarball dbamman/lrec2020-coref e30de53743d36d1ea2c9e7292c69477fa332713c splits-src '*/data/litbank_tenfold_splits/*'
  cp -r splits-src/data/litbank_tenfold_splits splits/
  rm -rf src splits-src
}

fetch_gum() {
  # Per-document files concatenated per split (order of splits.md), reddit documents (text not in the
  # repository) and the GENTLE test2 documents left out; OntoGUM's empty document names filled in.
  tarball amir-zeldes/gum 72ce5ac14978a324c2fd18d49484e65292cbe316 src \
    '*/splits.md' '*/coref/gum/conll/*.conll' '*/coref/ontogum/conll/*.conll' '*/dep/*.conllu'
  cp src/splits.md splits.md
  local split doc docs first
  for split in train dev test; do
    docs=$(awk -v wanted="$split" '/^## /{ current = $2 } /^  \* /{ if (current == wanted && $2 !~ /^GUM_reddit_/) print $2 }' src/splits.md)
    if [ -z "$docs" ]; then
      echo "  splits.md lists no $split documents" >&2
      return 1
    fi
    first=1
    : > "gum.$split.conll"; : > "ontogum.$split.conll"; : > "gum.$split.conllu"
    while IFS= read -r doc; do
      if [ $first -eq 0 ]; then
        echo >> "gum.$split.conll"; echo >> "ontogum.$split.conll"; echo >> "gum.$split.conllu"
      fi
      first=0
      strip_trailing_blank_lines "src/coref/gum/conll/$doc.conll" >> "gum.$split.conll"
      strip_trailing_blank_lines "src/coref/ontogum/conll/$doc.conll" \
        | sed "s/^# begin document *\$/# begin document $doc/" >> "ontogum.$split.conll"
      strip_trailing_blank_lines "src/dep/$doc.conllu" >> "gum.$split.conllu"
    done <<< "$docs"
    gzip -9n "gum.$split.conll" "ontogum.$split.conll" "gum.$split.conllu"
  done
  rm -rf src
}

fetch_jnlpba() {
  # brat standoff packed one abstract per JSON line (entities sorted by offset, each checked against the text),
  # plus the official tokenized test file.
  tarball spyysalo/jnlpba 4455122de861c6e448e2e8c7f19ef8f49dbc32b2 src '*/standoff/*' '*/original-data/test/Genia4EReval1.iob2'
  local pack='
import json, pathlib, sys
for txt in sorted(pathlib.Path(sys.argv[1]).glob("*.txt"), key=lambda path: path.stem):
    text = txt.read_text(encoding="utf-8")
    entities = []
    for line in txt.with_suffix(".ann").read_text(encoding="utf-8").splitlines():
        if line.startswith("T"):
            _, info, surface = line.split("\t")
            label, start, end = info.split(" ")
            if text[int(start):int(end)] != surface:
                sys.exit(f"{txt}: {line!r} does not match the text")
            entities.append([int(start), int(end), label, surface])
    entities.sort(key=lambda e: (e[0], e[1]))
    print(json.dumps({"doc_id": txt.stem, "text": text, "entities": entities}))
'
  "$PYTHON" -c "$pack" src/standoff/train | gzip -9n > train.jsonl.gz
  "$PYTHON" -c "$pack" src/standoff/test > test.jsonl
  cp src/original-data/test/Genia4EReval1.iob2 .
  rm -rf src
}

fetch_phee() {
  # ZhaoyueSun/PHEE: the original JSON lines and their EEQA rendering (tokenized, DyGIE-like), unchanged
  local base=$RAW/ZhaoyueSun/PHEE/41489b08675d0b63a1eb7cd4f2d1946952833eb1 split
  fetch "$base/LICENSE" LICENSE
  for split in train dev test; do
    fetch "$base/data/json/$split.json" "$split.json"
    fetch "$base/data/eeqa/$split.json" "$split.eeqa.json"
  done
}

fetch_ade() {
  # trunghlt/AdverseDrugReaction's ADE-Corpus-V2 (the corpus has no split): every line goes to a split by its PubMed
  # ID, sha256(PMID) mod 10: 0 test/, 1 dev/, else train/, so no abstract is in two splits; lines keep their order.
  local base=$RAW/trunghlt/AdverseDrugReaction/2851af96e26050cf551a2e1f716ff861f7b1059b/ADE-Corpus-V2 file
  mkdir -p src
  for file in DRUG-AE.rel DRUG-DOSE.rel ADE-NEG.txt; do
    fetch "$base/$file" "src/$file"
  done
  fetch "$base/README.txt" README.original.txt
  local split='
import hashlib, pathlib, sys
source, names = pathlib.Path(sys.argv[1]), sys.argv[2:]
for name in names:
    splits = {split: [] for split in ("train", "dev", "test")}
    for line in (source / name).read_bytes().splitlines(keepends=True):
        pmid = line.split(b"|" if name.endswith(".rel") else b" ", 1)[0]
        bucket = int(hashlib.sha256(pmid).hexdigest(), 16) % 10
        splits["test" if bucket == 0 else "dev" if bucket == 1 else "train"].append(line)
    for split, lines in splits.items():
        pathlib.Path(split).mkdir(exist_ok=True)
        pathlib.Path(split, name).write_bytes(b"".join(lines))
'
  "$PYTHON" -c "$split" src DRUG-AE.rel DRUG-DOSE.rel ADE-NEG.txt
  rm -rf src
}

# ------------------------------------------------------------------------------------------------ main

force=0
only_verify=0
selected=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --verify) only_verify=1 ;;
    --list) printf '%s\n' "${CORPORA[@]}"; exit 0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "unknown option $arg (try --help)" >&2; exit 2 ;;
    *)
      if [ -z "${DIGEST[$arg]+x}" ]; then
        echo "unknown corpus $arg; known: ${CORPORA[*]}" >&2
        exit 2
      fi
      selected+=("$arg") ;;
  esac
done
[ ${#selected[@]} -gt 0 ] || selected=("${CORPORA[@]}")

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${HMTL_DATA_DIR:-$root/data}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
mirror=${HMTL_DATA_MIRROR:-}
if [ -n "$mirror" ]; then
  if [ ! -d "$mirror" ]; then
    echo "HMTL_DATA_MIRROR=$mirror is not a folder" >&2
    exit 1
  fi
  mirror=$(cd "$mirror" && pwd)
  echo "data folder: $dest (copying from the mirror $mirror)"
elif [ $only_verify -eq 1 ]; then
  echo "data folder: $dest (checking against the reference digests)"
else
  echo "data folder: $dest (downloading from the public sources)"
fi

partial=""
cleanup() {
  if [ -n "$partial" ] && [ -d "$partial" ]; then
    echo "failed: removing the incomplete $partial" >&2
    rm -rf "$partial"
  fi
}
trap cleanup EXIT

for corpus in "${selected[@]}"; do
  target=$dest/$corpus
  if [ $only_verify -eq 1 ]; then
    if [ -d "$target" ]; then
      echo "$corpus: checking $target"
      verify "$corpus" "$target"
    else
      echo "$corpus: not in $dest"
    fi
    continue
  fi
  if [ -d "$target" ] && [ $force -eq 0 ]; then
    echo "$corpus: already in $target, left as is"
    continue
  fi
  partial=$dest/.$corpus.partial
  rm -rf "$partial"
  mkdir -p "$partial"
  if [ -n "$mirror" ]; then
    if [ ! -d "$mirror/$corpus" ]; then
      echo "$corpus: not in the mirror $mirror" >&2
      exit 1
    fi
    cp -r "$mirror/$corpus/." "$partial/"
    how="copied from $mirror/$corpus"
  else
    echo "$corpus: downloading"
    (cd "$partial" && "fetch_${corpus//-/_}")
    verify "$corpus" "$partial"
    how="downloaded"
  fi
  rm -rf "$target"
  mv "$partial" "$target"
  partial=""
  echo "$corpus: $how into $target ($(find "$target" -type f | wc -l | tr -d ' ') files)"
done
