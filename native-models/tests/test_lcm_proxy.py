"""The distillation proxy's validation cases (training/lcm_proxy.py): weights kept by their score must not be
chosen on the evaluation's own images."""
import numpy as np

from training.evaluate import inpaint_cases
from training.lcm_proxy import VALIDATION_SEED_OFFSET, validation_records


def records(n_train: int, n_heldout: int) -> list[dict]:
    split = ["train"] * n_train + ["heldout"] * n_heldout
    return [{"index": i, "split": s, "caption": f"emoji {i}"} for i, s in enumerate(split)]


def test_validation_takes_only_the_heldout_images_the_evaluation_leaves_out():
    recs = records(5, 7)
    eval_cfg = {"inpaint_images": 4}
    val, spare = validation_records(recs, eval_cfg)
    assert spare == 3
    assert [r["index"] for r in val if r["split"] == "heldout"] == [9, 10, 11]
    assert [r["index"] for r in val if r["split"] == "train"] == [0, 1, 2, 3, 4]
    assert recs[5]["split"] == "heldout"  # the caller's records are left as they were

    images = np.zeros((12, 8, 8, 3), np.uint8)
    mix = {"brush": 0.5, "box": 0.5, "whole": 0.0}
    evaluation = inpaint_cases(images, recs, eval_cfg, mix, 1234)
    validation = inpaint_cases(images, val, {"inpaint_images": spare}, mix, 1234 + VALIDATION_SEED_OFFSET)
    assert evaluation is not None and validation is not None
    assert evaluation[2] == ["emoji 5", "emoji 6", "emoji 7", "emoji 8"]
    assert validation[2] == ["emoji 9", "emoji 10", "emoji 11"]
    assert not set(evaluation[3]) & set(validation[3])  # other seeds


def test_no_validation_images_when_the_evaluation_takes_them_all():
    assert validation_records(records(3, 4), {"inpaint_images": 4})[1] == 0
