"""The demo model's caption templates: the benchmark's prompt forms are trained forms, the unseen phrasings
are not, every caption names what it promises, and the draw depends on the generator alone."""

import numpy as np

from nodes.demo import captions, dataset


def test_benchmark_forms_are_trained_and_unseen_phrasings_are_not():
    trained = set(captions.all_templates())
    assert set(captions.EVAL_TEMPLATES.values()) <= trained
    assert not set(captions.UNSEEN_TEMPLATES) & trained
    assert captions.prompt("tags", "green", "triangle", "white") == "green triangle, white background"
    assert captions.prompt("photo", "orange", "circle", "black") == "a photo of an orange circle on a black background"
    assert captions.prompt("sentence", "red", "circle", "blue") == dataset.caption("red", "circle", "blue")


def test_full_captions_name_colour_shape_and_background():
    rng = np.random.default_rng(0)
    for _ in range(300):
        colour, shape, background = dataset.TRAIN_COMBINATIONS[int(rng.integers(len(dataset.TRAIN_COMBINATIONS)))]
        text = captions.random_caption(rng, colour, shape, background, partial=False)
        words = text.lower().replace(",", " ").replace(";", " ").replace(".", " ").split()
        assert colour in words and shape in words and background in words
        assert words.index(background) + 1 == len(words) or words[words.index(background) + 1] in (
            "background", "backdrop", "with")


def test_every_form_and_partial_captions_are_drawn():
    rng = np.random.default_rng(1)
    drawn = {captions.random_caption(rng, "red", "circle", "blue") for _ in range(3000)}
    assert drawn >= {captions.fill(t, "red", "circle", "blue") for t in captions.all_templates()}
    assert "a red circle" in drawn  # partial
    assert captions.random_caption(np.random.default_rng(5), "red", "circle", "blue") == \
        captions.random_caption(np.random.default_rng(5), "red", "circle", "blue")
