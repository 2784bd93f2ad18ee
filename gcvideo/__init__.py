"""gcvideo: global context (GCNet, arXiv 1904.11492) for video and image recognition.

Layers (GC, SNL, NL blocks) -> models (Slow-R50, ResNet-50 with blocks) -> data (Kinetics decoded with
PyAV seeking by default, synthetic data) -> training (Lightning) -> cli (``gcvideo``).
"""

__version__ = "0.1.0"
