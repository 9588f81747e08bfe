"""Support-frame samplers."""
import numpy as np
import pytest

from minivod.data.sampling import (key_frame_schedule, sequential_support, shuffled_support, sliding_window,
                                   strided_support, test_support, train_support)


def test_train_support_same_video_and_window():
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = train_support(30, 12, 2, rng)
        assert len(s) == 2 and all(0 <= t < 30 and t != 12 for t in s) and len(set(s)) == 2
        w = train_support(30, 12, 4, rng, window=3)
        assert all(abs(t - 12) <= 3 and t != 12 for t in w)
    assert train_support(1, 0, 2, rng) == [0, 0]  # a DET still is its own support


def test_sequential_block():
    assert sequential_support(20, 10, 4) == [8, 9, 11, 12]
    assert sequential_support(20, 0, 4) == [1, 2, 3, 4]
    assert sequential_support(20, 19, 4) == [15, 16, 17, 18]


def test_strides_are_honoured():
    s = strided_support(100, 50, 6, stride=5)
    assert s == [45, 55, 40, 60, 35, 65]
    near_end = strided_support(20, 18, 4, stride=3)
    assert all(0 <= t < 20 for t in near_end)
    assert near_end[:2] == [15, 17]  # 21 mirrors back to 17


def test_shuffled_covers_video():
    n = 37
    covered = set()
    for ref in range(n):
        s = shuffled_support(n, ref, 3, seed=1)
        assert ref not in s and len(set(s)) == 3
        covered |= set(s)
    assert covered == set(range(n))
    # supports come from the whole video, not only the neighbourhood
    spread = [max(abs(t - ref) for t in shuffled_support(n, ref, 3, seed=1)) for ref in range(n)]
    assert max(spread) > 10
    with pytest.raises(ValueError, match="unknown test sampling mode"):
        test_support(n, 0, 3, mode="random")


def test_key_frames_and_windows():
    is_key, latest = key_frame_schedule(25, 10)
    assert [t for t in range(25) if is_key[t]] == [0, 10, 20]
    assert latest[9] == 0 and latest[10] == 10 and latest[24] == 20
    assert sliding_window(20, 5, 2) == [3, 4, 6, 7]
    assert sliding_window(20, 5, 2, online=True) == [3, 4]
    assert sliding_window(20, 0, 2) == [1, 2]
