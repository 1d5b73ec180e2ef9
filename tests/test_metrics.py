import math

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


def test_iou_uses_predicted_counts_for_the_union_and_scores_single_pixel_classes():
    cm = ConfusionMatrix(3)
    # class 0: 3 true pixels, predicted 4 times (one of class 1's); class 2: one pixel, right
    cm.update(np.array([0, 0, 0, 0, 1, 2]), np.array([0, 0, 0, 1, 1, 2]))
    assert cm.matrix.sum(0).tolist() == [4, 1, 1] and cm.matrix.sum(1).tolist() == [3, 2, 1]  # not symmetric
    assert cm.iou().tolist() == pytest.approx([3 / 4, 1 / 2, 1.0])
    assert cm.miou() == pytest.approx((3 / 4 + 1 / 2 + 1.0) / 3)  # the one-pixel class counts


def test_labels_outside_the_classes_are_ignored_and_predictions_outside_are_misses():
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 1, 1, 2]), np.array([0, 3, 7, 255]))  # 3 (= n, e.g. CamVid's void), 7 and 255: not scored
    assert cm.matrix.sum() == 1 and cm.truth_counts().tolist() == [1, 0, 0]
    cm.update(np.array([5, 1]), np.array([0, 1]))  # 5: a model class the class map sends nowhere
    cm.update(np.array([9]), np.array([0]))
    assert cm.missed.tolist() == [2, 0, 0]  # accumulated over images, wrong for the true class
    assert cm.truth_counts().tolist() == [3, 1, 0]
    assert cm.iou()[0] == pytest.approx(1 / 3) and cm.pixel_accuracy() == pytest.approx(2 / 4)


def test_miou_averages_only_classes_in_the_truth_and_warns_about_nothing():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an eval must not print numpy warnings for absent classes
        cm = ConfusionMatrix(4)
        assert np.isnan(cm.miou()) and np.isnan(cm.pixel_accuracy())  # nothing seen yet: undefined, not an error
        cm.update(np.array([0, 0, 2]), np.array([0, 0, 0]))  # class 2 predicted but absent from the truth
        assert cm.iou()[2] == 0 and np.isnan(cm.iou()[3])
        assert cm.miou() == pytest.approx(2 / 3)  # class 0 alone; class 2's IoU of 0 is not averaged in


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


def ohem_losses(probabilities):
    """Two-class logits whose target class (0) has these probabilities, one pixel each."""
    p = torch.tensor(probabilities, dtype=torch.float64)
    logits = torch.stack([torch.log(p), torch.log1p(-p)]).view(1, 2, 1, -1).float()
    return logits, torch.zeros(1, 1, len(probabilities), dtype=torch.long)


def test_ohem_defaults_to_the_papers_0_7_probability_threshold():
    logits, target = ohem_losses([0.5, 0.6, 0.65, 0.75, 0.8, 0.9, 0.95, 0.99] * 4)
    losses = torch.nn.functional.cross_entropy(logits, target, reduction="none").flatten()
    expected = losses[losses > -math.log(0.7)].mean()  # the 12 pixels below p = 0.7
    assert OhemCrossEntropy()(logits, target) == pytest.approx(float(expected), rel=1e-5)


def test_ohem_keeps_at_least_one_pixel_when_everything_is_easy():
    logits, target = ohem_losses([0.9, 0.95, 0.99, 0.97, 0.8, 0.92, 0.96, 0.98])  # 8 pixels: 1/16 of them rounds to 0
    loss = OhemCrossEntropy()(logits, target)
    assert loss == pytest.approx(-math.log(0.8), rel=1e-5)  # the single hardest pixel, not the mean of two
