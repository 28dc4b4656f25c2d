"""`python -m tests.fsdp_on_cpu ARGS` = `python -m training ARGS`, with FSDP allowed on CPU.

accelerate turns FSDP on only for accelerators: on CPU ranks (gloo) it quietly trains plain
data parallel instead, so configs/accelerate/fsdp.yaml could never be exercised without a
GPU. torch's FSDP itself runs on CPU with gloo; this test entry lifts accelerate's one check
(the state's engine) and changes nothing else, so the FSDP path of the worker (sharded
checkpoints, the adapter gathered from every rank) runs as it would on GPUs.

    python -m accelerate.commands.launch --config_file configs/accelerate/fsdp.yaml \\
        --num_processes 2 -m tests.fsdp_on_cpu train CONFIG --run-dir RUN_DIR
"""

import os
import sys

from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

_init = AcceleratorState.__init__


def _fsdp_on_cpu(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    asked = os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true"
    if asked and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = DistributedType.FSDP
        if getattr(self, "fsdp_plugin", None) is None:
            self.fsdp_plugin = kwargs.get("fsdp_plugin") or FullyShardedDataParallelPlugin()


AcceleratorState.__init__ = _fsdp_on_cpu

if __name__ == "__main__":
    from training.__main__ import main

    sys.exit(main(sys.argv[1:]))
