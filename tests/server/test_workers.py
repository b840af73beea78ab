"""The worker layer without HTTP: committing outputs, scheduling by model affinity, the event hub's bounds,
and the load lock that lets two in-process workers build models safely."""

from __future__ import annotations

import asyncio
import stat
import threading
from types import SimpleNamespace

import pytest

from nodegraph.server.hub import Hub, Message
from nodegraph.workers.load_lock import LOAD_LOCK, serialize_loaders
from nodegraph.workers.outputs import commit_files
from nodegraph.workers.pool import pick
from nodegraph.workers.spec import StagedFile


def staged(tmp_path, rel: str, data: bytes = b"x") -> StagedFile:
    path = tmp_path / "staging" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return StagedFile("save", "output", rel, path=str(path))


def test_committed_files_never_replace_existing_ones(tmp_path):
    out = tmp_path / "out"
    (out / "cats").mkdir(parents=True)
    (out / "cats" / "cat_00001.png").write_bytes(b"old")
    (out / "cats" / "cat_00007.png").write_bytes(b"old")
    files = [staged(tmp_path, "cats/cat_00001.png", b"new1"), staged(tmp_path, "cats/cat_00002.png", b"new2"),
             StagedFile("save", "output", "notes.txt", data=b"bytes from elsewhere"),
             StagedFile("save", "output", "notes.txt", data=b"again")]
    committed = commit_files(files, {"output": out})
    assert [(c.subfolder, c.filename) for c in committed] == [
        ("cats", "cat_00008.png"), ("cats", "cat_00002.png"), ("", "notes.txt"), ("", "notes_1.txt")]
    assert (out / "cats" / "cat_00001.png").read_bytes() == b"old"
    assert (out / "cats" / "cat_00008.png").read_bytes() == b"new1"
    assert (out / "notes_1.txt").read_bytes() == b"again"
    assert not list((tmp_path / "staging").rglob("*.png"))  # moved, not copied
    assert not list(out.rglob(".*"))  # no temporary files left behind
    assert stat.S_IMODE((out / "notes.txt").stat().st_mode) & 0o044  # readable as files usually are


@pytest.mark.parametrize("rel", ["../escape.png", "/abs.png", "a/../../b.png", ""])
def test_a_staged_file_cannot_name_a_place_outside_its_folder(tmp_path, rel):
    with pytest.raises(ValueError, match="unsafe"):
        commit_files([StagedFile("n", "output", rel, data=b"x")], {"output": tmp_path})


def worker(name: str, *models: str):
    return SimpleNamespace(name=name, models=list(models))


def test_jobs_go_to_the_idle_worker_that_holds_their_models():
    warm_a, warm_b, cold = worker("a", "checkpoints/A"), worker("b", "checkpoints/B"), worker("c")
    pending = [("j1", {"checkpoints/B"}), ("j2", {"checkpoints/A"}), ("j3", {"checkpoints/C"})]
    assert [(j, w.name) for j, w in pick(pending, [warm_a, warm_b, cold])] == [("j1", "b"), ("j2", "a"), ("j3", "c")]
    # A job whose models nobody holds goes to the worker holding least, keeping warm ones for their jobs.
    assert pick([("j", {"checkpoints/C"})], [warm_a, cold])[0][1].name == "c"
    # Jobs are never held back: with only a cold worker idle, the head of the queue takes it.
    assert [(j, w.name) for j, w in pick(pending, [cold])] == [("j1", "c")]
    assert pick(pending, []) == []


def test_a_slow_websocket_client_loses_progress_messages_but_nothing_else():
    async def scenario():
        hub = Hub()
        hub.bind(asyncio.get_running_loop())
        slow = hub.subscribe(lambda m: True, backlog=3)
        for kind in ["job_started", *["node_progress"] * 10, "node_finished", "job_finished"]:
            hub.publish(Message({"event": kind}, "job"))
        await asyncio.sleep(0.05)
        kept = []
        while not slow.queue.empty():
            kept.append((await slow.get()).data["event"])
        return kept, slow.dropped

    kept, dropped = asyncio.run(scenario())
    assert kept[0] == "job_started" and kept[-2:] == ["node_finished", "job_finished"]
    assert dropped == 10 - kept.count("node_progress") and len(kept) <= 4


def test_model_loading_nodes_take_the_load_lock_and_keep_their_ids(registry):
    locked = serialize_loaders(registry)
    loader = locked.get("core.CheckpointLoader")
    assert loader is not registry.get("core.CheckpointLoader") and loader.version == registry.get("core.CheckpointLoader").version
    assert locked.get("core.KSampler") is registry.get("core.KSampler")  # sampling stays parallel
    seen = []
    original = registry.get("core.CheckpointLoader").fn

    def probe(*args, **kwargs):
        seen.append(LOAD_LOCK._is_owned())
        return "loaded"

    import dataclasses

    holder = registry.copy()
    holder.register(dataclasses.replace(registry.get("core.CheckpointLoader"), fn=probe), override=True)
    wrapped = serialize_loaders(holder).get("core.CheckpointLoader").fn
    thread = threading.Thread(target=wrapped)
    thread.start()
    thread.join()
    assert seen == [True] and original is registry.get("core.CheckpointLoader").fn
