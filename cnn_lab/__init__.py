"""cnn-lab: train and compare convolutional networks on CIFAR-10, report in Chinese."""

__version__ = "0.1.0"
