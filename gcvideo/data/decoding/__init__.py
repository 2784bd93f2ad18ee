"""Decoding real video files frame-exactly: backends, the one-call ``decode_frames``, header probes, the
per-video manifest and the check of one video against an in-order decode.

Like ``torchvision.io``, this subpackage knows nothing of datasets or training: ``gcvideo data check`` and
``gcvideo data prepare`` use it without importing Lightning.
"""

from gcvideo.lazy_exports import lazy_exports

_EXPORTS = {
    "BACKEND_NAMES": "gcvideo.data.decoding.decoders",
    "DECODER_NAMES": "gcvideo.data.decoding.decoders",
    "Decoder": "gcvideo.data.decoding.decoders",
    "DecodeError": "gcvideo.data.decoding.decode",
    "FrameSelector": "gcvideo.data.decoding.decode",
    "check_backend": "gcvideo.data.decoding.decode",
    "decode_frames": "gcvideo.data.decoding.decode",
    "FrameCount": "gcvideo.data.decoding.video_info",
    "VideoInfo": "gcvideo.data.decoding.video_info",
    "ManifestRow": "gcvideo.data.decoding.manifest",
    "VideoInfoTable": "gcvideo.data.decoding.manifest",
    "manifest_path": "gcvideo.data.decoding.manifest",
    "probe_video": "gcvideo.data.decoding.probe",
    "check_video": "gcvideo.data.decoding.video_check",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
