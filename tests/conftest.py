import os
import shutil
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The tests run tiny models, for which one thread is 15-20x faster than two on a busy 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The suite never reads or writes the user's own folders: every XDG folder (config, data, cache, state: the
# model folder config, the user's models, plugins and input folders, the editor's settings and autosaves, Hugging
# Face's cache) points into one temporary folder for the session, removed at the end. Settings that would point
# a test at the user's files are cleared. Subprocesses started by tests inherit all of this.
SESSION_HOME = tempfile.mkdtemp(prefix="nodegraph-tests-")
for _name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
    os.environ[_name] = os.path.join(SESSION_HOME, _name.removeprefix("XDG_").removesuffix("_HOME").lower())
for _name in ("NODEGRAPH_MODELS", "NODEGRAPH_MODELS_CONFIG", "NODEGRAPH_PLUGIN_PATH", "NODEGRAPH_INPUT",
              "NODEGRAPH_LIMITS", "NODEGRAPH_DATA", "NODEGRAPH_DEVICE"):
    os.environ.pop(_name, None)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_HOME, ignore_errors=True)



@pytest.fixture(autouse=True)
def _limits_back_to_defaults():
    """``--limit`` changes this process's limits (a command line lives once); in-process tests run many."""
    yield
    from nodegraph.limits import reset

    reset()
