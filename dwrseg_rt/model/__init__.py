"""The DWRSeg networks."""

from dwrseg_rt.model.dwrseg import VARIANTS, DWRSeg, DWRSegConfig, build_model

__all__ = ["VARIANTS", "DWRSeg", "DWRSegConfig", "build_model"]
