import numpy as np
import pytest

from nodes.demo import dataset


def test_same_seed_and_index_give_identical_samples():
    a = dataset.batch_arrays(6, seed=3, start=10)
    b = dataset.batch_arrays(6, seed=3, start=10)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_another_seed_gives_other_samples():
    assert not np.array_equal(dataset.batch_arrays(6, seed=3)[0], dataset.batch_arrays(6, seed=4)[0])


def test_training_split_never_contains_a_held_out_combination():
    labels = dataset.batch_arrays(800, seed=0)[3]
    assert not set(labels) & dataset.HELD_OUT
    assert len(set(labels)) > 120  # and it does cover the training combinations broadly


def test_held_out_split_contains_only_held_out_combinations():
    labels = dataset.batch_arrays(100, seed=0, split="heldout")[3]
    assert set(labels) <= dataset.HELD_OUT
    assert len(set(labels)) == len(dataset.HELD_OUT)


def test_every_held_out_attribute_is_seen_in_training():
    for colour, shape, background in dataset.HELD_OUT:
        train = dataset.TRAIN_COMBINATIONS
        assert any(c == colour and s == shape for c, s, _ in train)
        assert any(c == colour and b == background for c, _, b in train)
        assert any(s == shape and b == background for _, s, b in train)


def test_foreground_and_background_colours_differ_and_come_from_the_palette():
    images, masks, _, labels = dataset.batch_arrays(50, seed=1)
    for image, mask, (colour, _, background) in zip(images, masks, labels):
        assert colour != background
        assert tuple(image[mask == 1.0][0]) == dataset.PALETTE[colour]
        assert tuple(image[0, 0]) == dataset.PALETTE[background]


def test_shape_stays_inside_the_frame_with_background_on_every_border():
    _, masks, _, _ = dataset.batch_arrays(200, seed=2)
    assert masks[:, :2].max() == 0 and masks[:, -2:].max() == 0
    assert masks[:, :, :2].max() == 0 and masks[:, :, -2:].max() == 0


@pytest.mark.parametrize(
    ("label", "text"),
    [
        (("red", "circle", "blue"), "a red circle on a blue background"),
        (("orange", "square", "white"), "an orange square on a white background"),
        (("black", "triangle", "orange"), "a black triangle on an orange background"),
    ],
)
def test_caption_reads_naturally(label, text):
    assert dataset.caption(*label) == text


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="split"):
        dataset.sample(0, split="test")
