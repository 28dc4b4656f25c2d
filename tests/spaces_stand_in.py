"""A stand-in for Hugging Face's `spaces` package, to test the ZeroGPU paths on a CPU.

`spaces.GPU(task, duration=...)` records each entry point decorated (by module and name)
with its duration rule, and wraps it as spaces 0.51 does where it matters here: each call
first computes its duration from the call's own arguments, and the arguments, the result and
every value a generator yields cross a pickle (spaces runs the call in a forked worker
process), so an entry point that passes an engine, a lock or a lambda fails here as there.
The call itself runs in this process.

    stand_in = use_zero_gpu(monkeypatch)      # SPACES_ZERO_GPU=true and this `spaces`
"""

import functools
import inspect
import pickle
import sys
import types


class SpacesStandIn(types.ModuleType):
    def __init__(self):
        super().__init__("spaces")
        self.decorated: dict[str, object] = {}  # "module.function" -> its duration rule
        self.calls: list[tuple[str, int]] = []  # ("module.function", seconds) per call

    def GPU(self, task=None, *, duration=None, size=None):  # noqa: N802 - spaces' own name
        if task is None:
            return functools.partial(self.GPU, duration=duration, size=size)
        name = f"{task.__module__}.{task.__qualname__}"
        self.decorated[name] = duration

        def schedule(args, kwargs):
            pickle.dumps((args, kwargs))
            self.calls.append((name, duration(*args, **kwargs)))

        if inspect.isgeneratorfunction(task):

            @functools.wraps(task)
            def stream(*args, **kwargs):
                schedule(args, kwargs)
                inner = task(*args, **kwargs)
                try:
                    for value in inner:
                        yield pickle.loads(pickle.dumps(value))
                finally:
                    inner.close()

            return stream

        @functools.wraps(task)
        def call(*args, **kwargs):
            schedule(args, kwargs)
            return pickle.loads(pickle.dumps(task(*args, **kwargs)))

        return call


def use_zero_gpu(monkeypatch) -> SpacesStandIn:
    """This process as a ZeroGPU Space: SPACES_ZERO_GPU=true and the stand-in importable."""
    stand_in = SpacesStandIn()
    monkeypatch.setitem(sys.modules, "spaces", stand_in)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    return stand_in
