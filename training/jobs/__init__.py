"""Jobs: training runs as the app queues, runs, watches and finds them again.

    rundir.py   the run directory protocol: config.yaml in; log, progress, status, adapter
                out; the lock held by whichever process trains the run
    store.py    the SQLite job index (owner, device, status, queue order, what the run list
                shows): every SQL statement
    runner.py   JobRunner: FIFO per device, a worker process per run, the app's limits,
                cancel, resume, recovery
    worker.py   `python -m training train`: one run in its own process, driven by a run directory
    launch.py   one worker process, or one per GPU under accelerate launch (DDP or FSDP)
    hf_jobs.py  a run on Hugging Face Jobs, followed like a worker: upload, job, log, results
    hf_entry.py what runs inside that job; submit.py: `python -m training submit`
    runs.py     finished runs for chat, evaluation and export, and who may see them

The run directory is the unit of state: the app can die and come back.
"""
