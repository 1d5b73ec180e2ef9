"""Backends, the Segmenter and the frame pipeline."""
