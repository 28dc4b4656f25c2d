"""How a run's worker is started: one process, or one per GPU under `accelerate launch`.

    launch = plan(cfg, detect())            # Launch(engine, processes, why)
    argv = command(launch, WORKER_CMD, ["cfg.yaml", "--run-dir", RUN_DIR])

One GPU (or a CPU): `python -m training train ARGS`, as always. Several GPUs: accelerate's
launcher with a shipped config, one worker process per GPU:

    python -m accelerate.commands.launch --config_file configs/accelerate/ddp.yaml \\
        --num_processes 2 --main_process_port PORT -m training train ARGS

The engine follows RunConfig.distributed: 'auto' takes DDP (a full copy of the model per GPU,
the fastest when it fits) unless the pre-flight estimate (training/backends/preflight.py)
says the run does not fit one GPU, then FSDP (weights sharded across the GPUs). The worker
is the same program either way: rank 0 alone writes the run directory, and the same
RunConfig trains on one CPU, one GPU, several GPUs or a Hugging Face job.
"""

import socket
import sys
from dataclasses import dataclass

from training.config import RunConfig
from training.hardware import Hardware
from training.paths import REPO_ROOT

ACCELERATE_CONFIGS = REPO_ROOT / "configs" / "accelerate"
WORKER_CMD = [sys.executable, "-m", "training", "train"]  # + CONFIG --run-dir DIR [--resume]


@dataclass(frozen=True)
class Launch:
    engine: str  # "none" (one process), "ddp" or "fsdp"
    processes: int
    why: str  # one line for the run's log

    @property
    def distributed(self) -> bool:
        return self.engine != "none"


def plan(cfg: RunConfig, hw: Hardware | None, fits_one: bool | None = None) -> Launch:
    """The engine and process count for this config on this hardware. fits_one: whether the
    run fits one GPU (the pre-flight's verdict; None: estimated here when 'auto' needs it)."""
    gpus = hw.count if hw is not None and hw.cuda else 1
    processes = min(cfg.num_processes or gpus, gpus)
    if gpus < 2 or processes < 2 or cfg.distributed == "none":
        return Launch("none", 1, f"one process ({gpus} GPU{'s' * (gpus != 1)} visible)")
    if cfg.distributed != "auto":
        return Launch(cfg.distributed, processes, f"{cfg.distributed} as the config asks")
    if cfg.method == "qlora":  # a 4-bit base fits one GPU per copy; FSDP + QLoRA is refused
        return Launch("ddp", processes, "ddp: a 4-bit base fits each GPU")
    if fits_one is None:
        fits_one = fits_one_gpu(cfg, hw)
    if fits_one is False:
        return Launch("fsdp", processes, f"fsdp: the run does not fit one {hw.name}")
    return Launch("ddp", processes, f"ddp: the run fits one {hw.name}")


def fits_one_gpu(cfg: RunConfig, hw: Hardware) -> bool | None:
    """The pre-flight's verdict for one of these GPUs, without the data's lengths (so for
    full batches of max_length: the worst case); None when the model cannot be sized."""
    from training.backends.preflight import estimate

    single = Hardware(hw.device, hw.name, hw.memory_gb, hw.precision)
    return estimate(cfg, None, hardware=single).fits


def command(launch: Launch, worker_cmd: list[str], worker_args: list[str]) -> list[str]:
    """The worker's argv for this launch. worker_cmd: the Python interpreter, then what it
    runs (WORKER_CMD; tests pass a script)."""
    if not launch.distributed:
        return [*worker_cmd, *worker_args]
    return [
        worker_cmd[0],
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ACCELERATE_CONFIGS / f"{launch.engine}.yaml"),
        "--num_processes",
        str(launch.processes),
        "--main_process_port",
        str(free_port()),  # two runs on one machine must not share a rendezvous port
        *worker_cmd[1:],
        *worker_args,
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
