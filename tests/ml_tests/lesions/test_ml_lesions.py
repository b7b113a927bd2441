from __future__ import annotations

import numpy as np
import pytest

from ml.lesions import label_lesions, lesion_volume_map, voxel_volume_mm3


def test_volume_map_and_labels_by_volume():
    m = np.zeros((4, 6, 7), dtype=np.uint8)
    m[0:2, 0:2, 0:2] = 1  # 8 voxels
    m[3, 0, 6] = 1  # 1 voxel
    m[1:4, 3:5, 2:6] = 1  # 24 voxels
    vm = lesion_volume_map(m)
    assert vm.dtype == np.int32
    assert vm[0, 0, 0] == 8 and vm[3, 0, 6] == 1 and vm[2, 4, 5] == 24 and vm[0, 5, 0] == 0
    labels, n = label_lesions(m)
    assert n == 3
    assert labels[3, 0, 6] == 1 and labels[0, 0, 0] == 2 and labels[2, 4, 5] == 3


@pytest.mark.parametrize("connectivity,expected,largest", [(6, 3, 1), (18, 2, 2), (26, 1, 3)])
def test_connectivity(connectivity, expected, largest):
    m = np.zeros((3, 3, 3), dtype=np.uint8)
    m[0, 0, 0] = 1
    m[1, 1, 0] = 1  # shares an edge with (0,0,0): 18-neighbour
    m[2, 2, 1] = 1  # corner neighbour of (1,1,0)
    assert label_lesions(m, connectivity)[1] == expected
    assert lesion_volume_map(m, connectivity).max() == largest


def test_empty_and_invalid():
    labels, n = label_lesions(np.zeros((2, 3, 4)))
    assert n == 0 and labels.shape == (2, 3, 4) and not labels.any()
    assert not lesion_volume_map(np.zeros((1, 1, 1))).any()
    with pytest.raises(ValueError):
        lesion_volume_map(np.zeros((3, 3)))
    with pytest.raises(ValueError):
        lesion_volume_map(np.zeros((3, 3, 3)), connectivity=8)
    assert voxel_volume_mm3((2.0, 0.5, 0.25)) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        voxel_volume_mm3((0.0, 1.0, 1.0))
