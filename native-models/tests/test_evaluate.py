"""The evaluation helpers behind eval.json's numbers (training/evaluate.py), on small arrays whose answers
are known by hand."""
import numpy as np
import pytest

from training.evaluate import blur_fill, mean_iou, paste_back, psnr_u8, retrieval_chance


def test_psnr_of_a_known_error():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 255, np.uint8)
    assert psnr_u8(a, b) == pytest.approx(0.0)  # MSE 1 on the [0, 1] scale
    c = a.copy()
    c[0, 0, 0] = 255  # one channel of 48 off by the full range: MSE 1/48
    assert psnr_u8(a, c) == pytest.approx(10 * np.log10(48))


def test_psnr_only_where_masked_and_identical_images_are_capped():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0] = 51  # 0.2 off in the masked pixel only
    where = np.zeros((2, 2, 3), bool)
    where[0, 0] = True
    assert psnr_u8(a, b, where) == pytest.approx(-10 * np.log10(0.04))
    assert psnr_u8(a, b, ~where) == pytest.approx(100.0)  # MSE floor 1e-10: no infinity in the JSON


def test_mean_iou_is_per_image_over_the_target_labels():
    target = np.array([[[0, 0], [1, 1]], [[2, 2], [2, 2]]])
    pred = np.array([[[0, 1], [1, 1]], [[2, 2], [2, 2]]])
    # Image 1: label 0 IoU 1/2, label 1 IoU 2/3; image 2: label 2 IoU 1.
    assert mean_iou(pred, target) == pytest.approx([(1 / 2 + 2 / 3) / 2, 1.0])


def test_mean_iou_ignores_labels_only_the_prediction_has():
    target = np.zeros((1, 2, 2), int)
    pred = np.array([[[0, 0], [0, 5]]])
    assert mean_iou(pred, target) == pytest.approx([3 / 4])


def test_mean_iou_needs_as_many_predictions_as_targets():
    with pytest.raises(ValueError):
        mean_iou(np.zeros((2, 2, 2), int), np.zeros((1, 2, 2), int))


def test_blur_fill_keeps_known_pixels_and_fills_from_them():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :4] = 200  # left half grey, right half black
    mask = np.zeros((8, 8), np.float32)
    mask[2:6, 3:5] = 1  # a hole across the edge
    out = blur_fill(image, mask)
    known = mask < 0.5
    assert np.array_equal(out[known], image[known])
    hole = out[mask >= 0.5]
    assert hole.min() > 0 and hole.max() < 200  # a mix of the two sides, not either one
    assert out[3, 3, 0] > out[3, 4, 0]  # nearer the grey side, greyer


def test_blur_fill_of_a_fully_masked_image_is_the_white_background():
    out = blur_fill(np.zeros((4, 4, 3), np.uint8), np.ones((4, 4), np.float32))
    assert (out == 255).all()


def test_paste_back_takes_generated_pixels_only_under_the_mask():
    original = np.zeros((1, 2, 2, 3), np.uint8)
    generated = np.full((1, 2, 2, 3), 9, np.uint8)
    masks = np.array([[[1.0, 0.0], [0.0, 0.6]]])
    out = paste_back(original, generated, masks)
    assert out[0, :, :, 0].tolist() == [[9, 0], [0, 9]]


def test_retrieval_chance_is_k_times_the_group_share():
    sizes = {"apple": 2, "dog": 10}
    assert retrieval_chance(["apple"], sizes, 100, 5) == pytest.approx(0.10)
    assert retrieval_chance(["apple", "dog"], sizes, 100, 5) == pytest.approx((0.10 + 0.50) / 2)
    assert retrieval_chance(["dog"], sizes, 20, 5) == 1.0  # capped
    assert retrieval_chance(["unseen"], sizes, 100, 5) == 0.0  # not in the gallery: unreachable


def test_retrieval_chance_bounds_the_exact_random_hit_rate():
    from math import comb
    n, group, k = 200, 3, 5
    exact = 1 - comb(n - group, k) / comb(n, k)
    approx = retrieval_chance(["g"], {"g": group}, n, k)
    assert exact <= approx < exact * 1.05
