"""A small CNN domain classifier whose penultimate layer stands in for Inception-v3 features offline."""
from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn


def conv_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """Two 3x3 convolutions with batch norm and ReLU at one resolution."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(),
        nn.Conv2d(out_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(),
    )


class DomainClassifier(nn.Module):
    """Images in [0, 1] -> class logits; conv blocks halving the resolution, global average pooling, one dense layer."""

    def __init__(self, in_ch: int, image_size: int, num_classes: int, channels: tuple[int, ...] = (32, 64),
                 feature_dim: int = 128):
        super().__init__()
        self.config = {"in_ch": in_ch, "image_size": image_size, "num_classes": num_classes,
                       "channels": list(channels), "feature_dim": feature_dim}
        layers = [conv_block(in_ch, channels[0])]
        for c_in, c_out in pairwise(channels):
            layers += [nn.MaxPool2d(2), conv_block(c_in, c_out)]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.penultimate = nn.Sequential(nn.Linear(channels[-1], feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (the features FID is computed on)."""
        size = self.config["image_size"]
        if x.shape[1:] != (self.config["in_ch"], size, size):
            raise ValueError(f"expected images of shape (N, {self.config['in_ch']}, {size}, {size}), got {tuple(x.shape)}")
        return self.penultimate(self.body(2.0 * x - 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.head(self.features(x))
