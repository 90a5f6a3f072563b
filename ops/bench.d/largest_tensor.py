"""Print the F32 byte size of a safetensors file's largest tensor: largest_tensor.py MODEL."""
import sys

import numpy as np
from safetensors import safe_open

with safe_open(sys.argv[1], framework="np") as f:
    print(max(int(np.prod(f.get_slice(k).get_shape(), dtype=np.int64)) * 4 for k in f.keys()))
