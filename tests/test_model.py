import pytest
import torch

from dwrseg_rt.model import build_model
from dwrseg_rt.model.complexity import count_conv_macs, count_parameters

# Table 1 of the paper, at 3x512x1024
PAPER = {"b": (2.54e6, 13.62e9), "l": (3.53e6, 16.42e9)}


@pytest.mark.parametrize("variant", ["b", "l"])
def test_size_matches_the_paper_within_2_percent(variant):
    model = build_model(variant, num_classes=19)
    params, macs = PAPER[variant]
    assert count_parameters(model) == pytest.approx(params, rel=0.02)
    assert count_conv_macs(model, 512, 1024) == pytest.approx(macs, rel=0.02)


@pytest.mark.parametrize("variant", ["b", "l"])
@pytest.mark.parametrize("height,width", [(64, 128), (97, 131), (33, 250)])
def test_logits_have_the_input_size_for_any_shape(variant, height, width):
    model = build_model(variant, num_classes=7).eval()
    with torch.inference_mode():
        logits = model(torch.randn(2, 3, height, width))
    assert logits.shape == (2, 7, height, width)
    assert torch.isfinite(logits).all()


def test_l_is_deeper_than_b():
    base, large = build_model("b"), build_model("l")
    assert len(base.stage2) == 1 + 7 and len(large.stage2) == 1 + 8
    assert len(base.stage3) == 1 + 3 and len(large.stage3) == 1 + 8
    assert len(base.stage4) == 1 + 3 and len(large.stage4) == 1 + 3


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown DWRSeg variant"):
        build_model("xl")
