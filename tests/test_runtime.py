"""limit_threads caps BLAS and torch (checked in a fresh process: the cap is process-wide)."""

import json
import subprocess
import sys

import pytest

from crossmodal_core.runtime import limit_threads

PROBE = """
import json, numpy
from crossmodal_core.runtime import limit_threads
limit_threads(1)
import torch, threadpoolctl, os
print(json.dumps({"torch": torch.get_num_threads(),
                  "blas": sorted({p["num_threads"] for p in threadpoolctl.threadpool_info()}),
                  "env": os.environ["OMP_NUM_THREADS"]}))
"""


def test_limit_threads_caps_blas_and_torch_in_a_fresh_process():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"torch": 1, "blas": [1], "env": "1"}


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_limit_threads_rejects_what_is_not_a_positive_int(bad):
    with pytest.raises(ValueError, match="positive integer"):
        limit_threads(bad)
