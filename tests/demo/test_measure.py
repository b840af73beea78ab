import numpy as np
import pytest

from nodes.demo import dataset, measure


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_classifies_the_datasets_own_images(split):
    images, _, _, labels = dataset.batch_arrays(150, seed=11, split=split)
    hits = np.asarray([measure.measure(img).matches(*lab) for img, lab in zip(images, labels)])
    assert hits.mean(axis=0).min() >= 0.98


def test_measured_region_overlaps_the_true_mask():
    images, masks, _, _ = dataset.batch_arrays(60, seed=12)
    ious = [measure.iou(measure.measure(img).mask, m > 0.5) for img, m in zip(images, masks)]
    assert min(ious) > 0.75


def test_float_images_in_unit_range_are_read_like_uint8():
    image = dataset.render("green", "triangle", "purple", 30, 34, 30).image
    assert measure.measure(image.astype(np.float32) / 255).matches("green", "triangle", "purple") == (True,) * 3


def test_plain_field_has_no_foreground():
    image = np.zeros((64, 64, 3), np.uint8) + np.asarray(dataset.PALETTE["yellow"], np.uint8)
    m = measure.measure(image)
    assert (m.colour, m.shape, m.background) == (None, None, "yellow")


def test_mild_noise_does_not_change_the_classification():
    sample = dataset.render("red", "square", "orange", 32, 30, 26)
    noisy = np.clip(sample.image + np.random.default_rng(0).normal(0, 12, sample.image.shape), 0, 255)
    assert measure.measure(noisy.astype(np.uint8)).matches("red", "square", "orange") == (True,) * 3


def test_iou_of_disjoint_and_identical_masks():
    a = np.zeros((8, 8), bool)
    a[:4] = True
    assert measure.iou(a, a) == 1.0
    assert measure.iou(a, ~a) == 0.0


def test_non_image_input_is_refused():
    with pytest.raises(ValueError, match="expected an image"):
        measure.measure(np.zeros((64, 64)))


def test_corner_fill_tells_square_corners_from_rounded_ones():
    square = dataset.render("red", "square", "blue", 32, 32, 30)
    rounded = square.image.copy()
    found = measure.measure(square.image).mask
    ys, xs = np.nonzero(found)
    for y in (ys.min(), ys.max()):  # cut a 3-pixel corner off each corner of the box
        for x in (xs.min(), xs.max()):
            dy, dx = (1 if y == ys.min() else -1), (1 if x == xs.min() else -1)
            for i in range(3):
                for j in range(3 - i):
                    rounded[y + dy * i, x + dx * j] = dataset.PALETTE["blue"]
    assert measure.corner_fill(found) > 0.95
    assert measure.corner_fill(measure.measure(rounded).mask) < 0.8
    assert measure.corner_fill(measure.measure(dataset.render("red", "circle", "blue", 32, 32, 30).image).mask) < 0.3
