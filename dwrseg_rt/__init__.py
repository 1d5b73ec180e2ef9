"""Real-time semantic segmentation of camera video with DWRSeg."""

__version__ = "0.1.0"
