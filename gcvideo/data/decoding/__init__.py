"""Decoding real video files frame-exactly: backends, the one-call ``decode_frames``, header probes, the
per-video manifest and the check of one video against an in-order decode.

Like ``torchvision.io``, this subpackage knows nothing of datasets or training: ``gcvideo data check`` and
``gcvideo data prepare`` use it without importing Lightning.
"""

from gcvideo.lazy_exports import by_name, lazy_exports

_EXPORTS = by_name({
    "gcvideo.data.decoding.decoders": ("BACKEND_NAMES", "DECODER_NAMES", "Decoder"),
    "gcvideo.data.decoding.decode": ("DecodeError", "FrameSelector", "check_backend", "decode_frames"),
    "gcvideo.data.decoding.video_info": ("FrameCount", "VideoInfo"),
    "gcvideo.data.decoding.manifest": ("ManifestRow", "VideoInfoTable", "manifest_path"),
    "gcvideo.data.decoding.probe": ("probe_video",),
    "gcvideo.data.decoding.video_check": ("check_video",),
})
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
