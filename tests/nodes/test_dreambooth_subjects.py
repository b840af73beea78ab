"""The ring measurement of the DreamBooth demo: a region with a hole is a ring; filled shapes are not."""

from __future__ import annotations

import numpy as np
import pytest

from nodes.training.subjects import MIN_HOLE_SHARE, hole_share, ring_mask


def test_a_ring_encloses_a_hole_and_a_disc_does_not():
    ring = ring_mask(32, 32, 40) > 0.5
    disc = ring_mask(32, 32, 40, hole_ratio=0.0) > 0.5
    assert hole_share(ring) >= MIN_HOLE_SHARE
    assert hole_share(disc) == 0.0


def test_a_gap_to_the_border_is_no_hole():
    ring = ring_mask(32, 32, 40) > 0.5
    ring[:32, 30:34] = False  # cut the ring open up to the image border: the inside now leaks out
    assert hole_share(ring) == 0.0
    assert hole_share(np.zeros((8, 8), dtype=bool)) == 0.0


def test_drawn_rings_measure_as_rings_and_the_demo_datasets_shapes_do_not():
    dataset = pytest.importorskip("nodes.demo.dataset")
    from nodes.training.subjects import draws, is_ring, subject_images

    rings = subject_images(6, seed=3)
    assert all(is_ring(image) for image in rings)
    assert not any(draws(image, "red", "circle", "blue") for image in rings)  # a ring is no circle
    shapes = [dataset.sample(i) for i in range(40)]
    assert not any(is_ring(s.image) for s in shapes)
    assert all(draws(s.image, s.colour, s.shape, s.background) for s in shapes)
