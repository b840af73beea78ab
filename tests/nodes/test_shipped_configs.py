"""The configs shipped for single-file checkpoints are the real model folders' files, key for key, so a
scheduler derived from them behaves as diffusers' does (issue 19: SD1.5's real scheduler config has no
``timestep_spacing``, so Euler, Euler ancestral and DPM++ run diffusers' "linspace" there, not "leading")."""

from __future__ import annotations

import json

import pytest

from nodes.sampling.schedulers import SCHEDULER_NAMES, SCHEDULERS, make_scheduler
from nodes.sd.families import FAMILIES, load_config
from tests.fixtures.tiny_sd import HUB_CONFIGS, HUB_REPOS, hub_config

COMPONENTS = [(family.key, name) for family in FAMILIES.values()
              for name in ("model_index", "unet", "vae", "scheduler", *family.text_encoders)]


@pytest.mark.parametrize(("family", "component"), COMPONENTS)
def test_shipped_config_is_the_real_model_folders_file(family: str, component: str) -> None:
    if component == "model_index":
        shipped = json.loads((FAMILIES[family].config_dir / "model_index.json").read_text(encoding="utf-8"))
    else:
        shipped = load_config(family, component)
    assert shipped == hub_config(family, component)


def test_every_real_folder_file_is_shipped() -> None:
    for family, repo in HUB_REPOS.items():
        real = sorted(p.relative_to(HUB_CONFIGS / repo) for p in (HUB_CONFIGS / repo).rglob("*.json"))
        shipped = sorted(p.relative_to(FAMILIES[family].config_dir) for p in FAMILIES[family].config_dir.rglob("*.json"))
        assert shipped == real


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_every_scheduler_runs_the_timesteps_diffusers_derives_from_the_real_folder(family: str, name: str) -> None:
    """diffusers' way: load the folder's own scheduler, then ``OtherScheduler.from_config(its config)``."""
    import diffusers

    class_name, overrides = SCHEDULERS[name]
    folder_scheduler = getattr(diffusers, hub_config(family, "scheduler")["_class_name"]).from_pretrained(
        str(HUB_CONFIGS / HUB_REPOS[family]), subfolder="scheduler", local_files_only=True)
    theirs = getattr(diffusers, class_name).from_config(folder_scheduler.config, **overrides)
    ours = make_scheduler(name, load_config(family, "scheduler"), "epsilon")
    for scheduler in (theirs, ours):
        scheduler.set_timesteps(20)
    assert ours.config.timestep_spacing == theirs.config.timestep_spacing
    assert ours.timesteps.tolist() == theirs.timesteps.tolist()
    if hasattr(theirs, "sigmas"):
        assert ours.sigmas.tolist() == theirs.sigmas.tolist()
