"""One local job per GPU, queued: a detached run waits here until a GPU of this computer is free (no other
running local job of the runs folder holds it), records the GPU in its ``job.json`` and becomes the
training process (``exec``, same pid) with ``CUDA_VISIBLE_DEVICES`` set to it.

    python -m MedGradeTrainLib.gpu_queue RUN_DIR N_GPUS -- <medgrade arguments>
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from MedGradeCoreLib.file_lock import locked

from .job_record import write_job
from .runs import free_gpu

POLL_S = 2.0


def claim(run_dir: Path, n_gpus: int) -> str | None:
    """A free GPU recorded for this run under the runs folder's lock (two queued runs never take one GPU)."""
    root = run_dir.parent
    with locked(root / ".gpu-queue.lock"):
        gpu = free_gpu(root, n_gpus)
        if gpu is not None:
            write_job(run_dir, {"gpu": gpu, "pid": os.getpid(), "status": "started", "started": time.time()})
        return gpu


def main(argv: list[str]) -> int:
    run_dir, n_gpus, args = Path(argv[0]), int(argv[1]), argv[argv.index("--") + 1:]
    from MedGradeCoreLib.jobs import medgrade_command, process_group_id
    from MedGradeCoreLib.processes import identity

    trainer = medgrade_command(args)

    # the recorded identity also names the trainer this process becomes (exec keeps pid and start time)
    process = identity(os.getpid(), [trainer])
    write_job(run_dir, {"status": "queued", "pid": os.getpid(), "pgid": process_group_id(), "gpu": None,
                        "process": process})
    while (gpu := claim(run_dir, n_gpus)) is None:
        time.sleep(POLL_S)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=gpu)
    os.execve(trainer[0], trainer, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
