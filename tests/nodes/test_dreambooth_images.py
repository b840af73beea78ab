"""The image folders of DreamBooth training: what is read, what is generated where, and what the cache sees."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nodegraph.paths import PathPolicy, resolve_read
from nodes.training.image_folder import (
    FolderError,
    class_folder,
    folder_fingerprint,
    generated_name,
    instance_folder,
    list_images,
    load_images,
    plan_class_images,
)


def _png(path, width=16, height=16, colour=(200, 30, 30)):
    Image.fromarray(np.full((height, width, 3), colour, dtype=np.uint8)).save(path)
    return path


def _resolver(workflow_dir):
    policy = PathPolicy(workflow_dir=workflow_dir, input_dirs=())
    return lambda text: resolve_read(policy, text, "instance_images", "instance image folder", folder=True)


def test_missing_empty_and_file_folders_are_refused_with_the_path(tmp_path):
    resolve = _resolver(tmp_path)
    with pytest.raises(FolderError, match="no folder given"):
        instance_folder("  ", resolve)
    with pytest.raises(FolderError, match="not found"):
        instance_folder("nowhere", resolve)
    with pytest.raises(FolderError, match="is a file"):
        instance_folder(str(_png(tmp_path / "a.png")), resolve)
    assert list_images(tmp_path / "nowhere").images == []


def test_instance_folders_are_found_beside_the_workflow_and_never_outside_the_allowed_folders(tmp_path):
    (tmp_path / "flows" / "subject").mkdir(parents=True)
    resolve = _resolver(tmp_path / "flows")
    assert instance_folder("subject", resolve) == (tmp_path / "flows" / "subject").resolve()
    (tmp_path / "private").mkdir()
    with pytest.raises(FolderError, match="outside the folders a workflow may read"):
        instance_folder(str(tmp_path / "private"), resolve)
    with pytest.raises(FolderError, match="outside the folders a workflow may read"):
        instance_folder("../private", resolve)


def test_only_image_files_directly_inside_are_listed_and_links_out_are_skipped(tmp_path):
    folder = tmp_path / "subject"
    (folder / "nested").mkdir(parents=True)
    _png(folder / "b.png")
    _png(folder / "a.jpg")
    _png(folder / "nested" / "deep.png")
    _png(folder / ".hidden.png")
    (folder / "notes.txt").write_text("not an image")
    outside = _png(tmp_path / "outside.png")
    (folder / "link.png").symlink_to(outside)
    listing = list_images(folder)
    assert [p.name for p in listing.images] == ["a.jpg", "b.png"]
    assert any("link.png" in note for note in listing.skipped)


def test_images_of_other_sizes_are_centre_cropped_and_resized_with_a_note(tmp_path):
    wide = tmp_path / "wide.png"
    # a red square in the middle of a wide image with blue sides: the centre crop keeps only the red
    pixels = np.zeros((20, 60, 3), dtype=np.uint8)
    pixels[:, :] = (0, 0, 255)
    pixels[:, 20:40] = (255, 0, 0)
    Image.fromarray(pixels).save(wide)
    exact = _png(tmp_path / "exact.png", 8, 8)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    loaded = load_images([wide, exact, broken], 8)
    assert loaded.images.shape == (2, 8, 8, 3)
    assert loaded.names == ["wide.png", "exact.png"]
    assert loaded.resized == ["wide.png (60x20)"]
    assert loaded.unreadable and loaded.unreadable[0].startswith("broken.png")
    red = loaded.images[0]
    assert red[..., 0].min() > 0.9 and red[..., 2].max() < 0.1


def test_relative_class_folders_lie_in_the_output_folder_and_may_not_leave_it(tmp_path):
    output = tmp_path / "out"
    folder, creatable = class_folder("dogs", output, "a_dog")
    assert folder == output.absolute() / "dogs" and creatable
    default, _ = class_folder("", output, "a_dog")
    assert default == output.absolute() / "dreambooth_class" / "a_dog"
    with pytest.raises(FolderError, match=r"\.\."):
        class_folder("../elsewhere", output, "a_dog")
    with pytest.raises(FolderError, match="must exist"):
        class_folder(str(output / "absent"), output, "a_dog")
    (output / "mine").mkdir(parents=True)
    existing, creatable = class_folder(str(output / "mine"), output, "a_dog")
    assert existing == output / "mine" and not creatable


def test_an_absolute_class_folder_outside_the_output_and_input_folders_is_never_written(tmp_path):
    """Generated class images go into the class folder: a workflow (maybe from a shared PNG) may not name any
    existing folder of the machine (issue 19's write hole)."""
    output, inputs, elsewhere = tmp_path / "out", tmp_path / "in", tmp_path / "home"
    for folder in (output, inputs / "dogs", elsewhere):
        folder.mkdir(parents=True)
    with pytest.raises(FolderError, match="outside the folders a workflow may write to"):
        class_folder(str(elsewhere), output, "a_dog", [inputs])
    assert class_folder(str(inputs / "dogs"), output, "a_dog", [inputs]) == (inputs / "dogs", False)
    (output / "escape").symlink_to(elsewhere)  # a link inside the output folder that leads out of it
    with pytest.raises(FolderError, match="outside"):
        class_folder("escape", output, "a_dog", [inputs])
    with pytest.raises(FolderError, match="outside"):
        class_folder(str(output / "escape"), output, "a_dog", [inputs])


def test_class_plan_uses_own_images_then_this_prompts_generated_ones_then_lists_what_is_missing(tmp_path):
    _png(tmp_path / "mine_1.png")
    _png(tmp_path / "mine_2.png")
    _png(tmp_path / generated_name("a dog", 1))
    _png(tmp_path / generated_name("a cat", 0))  # another prompt's image is not a dog
    plan = plan_class_images(tmp_path, "a dog", 5)
    assert [p.name for p in plan.existing] == ["mine_1.png", "mine_2.png", generated_name("a dog", 1)]
    assert plan.missing == [0, 2]
    few = plan_class_images(tmp_path, "a dog", 1)
    assert [p.name for p in few.existing] == ["mine_1.png"] and few.missing == []


def test_generated_class_images_do_not_change_the_folder_fingerprint(tmp_path):
    _png(tmp_path / "mine.png")
    before = folder_fingerprint(tmp_path, skip_generated=True)
    _png(tmp_path / generated_name("a dog", 0))
    assert folder_fingerprint(tmp_path, skip_generated=True) == before
    assert folder_fingerprint(tmp_path) != before  # the instance folder counts every image
    _png(tmp_path / "mine.png", colour=(0, 0, 0), width=17)
    assert folder_fingerprint(tmp_path, skip_generated=True) != before  # the user's own images do count
