"""Run by tests/test_distributed.py under `python -m torch.distributed.run --nproc_per_node 2`: a selection saved
while the second process comes late to the save (it sleeps first), so the main one has written the folder by then.
Once every process checked the folder itself and the late one refused the main one's finished folder."""

import sys
import time

import svp_hf
from svp_hf.distributed import current, shutdown


def main(out: str, data: str) -> None:
    dist = current()
    assert dist is not None and dist.world_size == 2
    result = svp_hf.select(svp_hf.load_pool(data, "train[:200]"), strategy="random", budget=20, seed=0)
    if not dist.is_main:
        time.sleep(3)
    result.save_to_disk(out)
    shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
