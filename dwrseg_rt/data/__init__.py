"""Label sets, datasets, augmentation and the synthetic street world."""
