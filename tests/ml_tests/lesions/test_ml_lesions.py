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


def test_lesion_stats_volumes_centroids_and_probabilities() -> None:
    from ml.lesions import lesion_stats

    labels = np.zeros((3, 4, 5), dtype=np.int32)
    labels[0:2, 1, 1] = 2  # two voxels in z
    labels[2, 3, 4] = 5
    prob = np.zeros(labels.shape, dtype=np.float32)
    prob[0, 1, 1], prob[1, 1, 1] = 0.25, 0.75
    a = np.full(labels.shape, 0.5, dtype=np.float32)
    b = np.zeros(labels.shape, dtype=np.float32)
    stats = lesion_stats(labels, (2.0, 1.0, 0.5), prob=prob, disagreement=(a, b))
    assert list(stats) == [2, 5]
    s = stats[2]
    assert (s.volume_vox, s.volume_mm3) == (2, 2.0)
    assert s.centroid_vox == (0.5, 1.0, 1.0) and s.centroid_mm == (1.0, 1.0, 0.5)
    assert s.bbox == (0, 1, 1, 2, 2, 2) and s.largest_slice == 0
    assert (s.mean_prob, s.max_prob, s.disagreement) == (0.5, 0.75, 0.5)
    assert lesion_stats(labels, (1, 1, 1), only=[5])[5].bbox == (2, 3, 4, 3, 4, 5)
    assert lesion_stats(labels, (1, 1, 1), only=[7]) == {}
    assert stats[5].mean_prob == 0.0


def test_importing_ml_lesions_costs_numpy_only() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, ml.lesions; sys.exit(any(m in sys.modules for m in ('torch', 'cc3d')))"
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True)
    assert result.returncode == 0, result.stderr
