import numpy as np
import pytest
import torch

from dwrseg_rt.train.loss import OhemCrossEntropy
from dwrseg_rt.train.metrics import ConfusionMatrix


def test_miou_matches_a_hand_computed_confusion_matrix():
    truth = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 2]])
    cm = ConfusionMatrix(4)
    cm.update(pred, truth)
    # valid pixels: (0,0) (0,1) (1,1) (1,1) (2,2) (2,0) (1,2); ignore is skipped
    expected = np.zeros((4, 4), int)
    for t, p in [(0, 0), (0, 1), (1, 1), (1, 1), (2, 2), (2, 0), (1, 2)]:
        expected[t, p] += 1
    assert np.array_equal(cm.matrix, expected)
    # IoU: class0 = 1/(2+2-1)=1/3, class1 = 2/(3+3-2)=1/2, class2 = 1/(2+2-1)=1/3, class3 absent
    iou = cm.iou()
    assert iou[:3] == pytest.approx([1 / 3, 1 / 2, 1 / 3])
    assert np.isnan(iou[3])
    assert cm.miou() == pytest.approx((1 / 3 + 1 / 2 + 1 / 3) / 3)
    assert cm.pixel_accuracy() == pytest.approx(4 / 7)


def test_confusion_accumulates_over_images():
    cm = ConfusionMatrix(2)
    cm.update(np.array([0, 1]), np.array([0, 1]))
    cm.update(np.array([1]), np.array([0]))
    assert cm.matrix.tolist() == [[1, 1], [0, 1]]


def test_ohem_keeps_hard_pixels_and_at_least_the_minimum():
    logits = torch.zeros(1, 2, 1, 32)
    logits[0, 0, 0, :28] = 10.0  # 28 easy pixels of class 0
    target = torch.zeros(1, 1, 32, dtype=torch.long)
    target[0, 0, 28:] = 1  # 4 hard pixels: predicted 0 (ties at 0.5 for the last ones)
    target = target.view(1, 1, 32)
    loss = OhemCrossEntropy(threshold=0.7, min_fraction=1 / 16)(logits, target)
    hard = torch.nn.functional.cross_entropy(logits, target, reduction="none")[target == 1].mean()
    assert loss == pytest.approx(float(hard), rel=1e-5)
    easy_only = OhemCrossEntropy(min_fraction=0.5)(logits[..., :28], target[..., :28])
    assert easy_only > 0  # nothing is hard, so the top half of the losses still counts
    ignored = torch.full((1, 1, 32), 255, dtype=torch.long)
    assert OhemCrossEntropy()(logits, ignored) == 0
