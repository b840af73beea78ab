"""The ring measurement of the DreamBooth demo: a region with a hole is a ring; filled shapes are not."""

from __future__ import annotations

import numpy as np

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
