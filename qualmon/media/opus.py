"""libopus decoding straight to 16 kHz mono: the rate webrtcvad wants, no resampler.

aiortc decodes every Opus packet to 48 kHz stereo in a thread per receiver and hands each
frame to the event loop (measured here: 49 µs decode + 38 µs thread hop per 20 ms
packet, more when 40 legs contend for the GIL). libopus decodes at 16 kHz mono natively
(22 µs), so the speech path decodes the tapped RTP payloads itself and aiortc's decoder
is stopped. FFmpeg's libopus wrapper (PyAV) forces 48 kHz, hence ctypes on libopus itself:
the copy PyAV's wheel ships, or the system's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os

import av

RATE = 16000
MAX_FRAME_SAMPLES = RATE * 120 // 1000  # an Opus packet holds at most 120 ms
_OPUS_OK = 0


@functools.cache
def load_libopus() -> ctypes.CDLL | None:
    """libopus from PyAV's wheel (always there with it) or the system; None if neither."""
    av_dir = os.path.dirname(av.__file__)
    candidates = sorted(
        glob.glob(os.path.join(av_dir, os.pardir, "av.libs", "libopus*.so*"))
        + glob.glob(os.path.join(av_dir, ".dylibs", "libopus*.dylib"))
    )
    system = ctypes.util.find_library("opus")
    if system:
        candidates.append(system)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            create = lib.opus_decoder_create
        except (OSError, AttributeError):
            continue
        create.restype = ctypes.c_void_p
        create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int32,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.opus_decoder_destroy.restype = None
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        return lib
    return None


def available() -> bool:
    return load_libopus() is not None


class OpusDecoder16k:
    """One stream's Opus decoder; decode() returns 16 kHz mono s16 bytes."""

    def __init__(self) -> None:
        lib = load_libopus()
        if lib is None:
            raise RuntimeError("libopus not found (neither in PyAV's wheel nor the system)")
        self._lib = lib
        self._state: int | None = self._create()
        self._out = ctypes.create_string_buffer(MAX_FRAME_SAMPLES * 2)
        self.errors = 0

    def _create(self) -> int:
        error = ctypes.c_int()
        state = self._lib.opus_decoder_create(RATE, 1, ctypes.byref(error))
        if error.value != _OPUS_OK or not state:
            raise RuntimeError(f"opus_decoder_create failed ({error.value})")
        return int(state)

    def decode(self, payload: bytes) -> bytes:
        """PCM of one packet; b"" for a packet libopus rejects (counted in `errors`)."""
        if self._state is None:
            return b""
        samples = self._lib.opus_decode(
            self._state, payload, len(payload), self._out, MAX_FRAME_SAMPLES, 0
        )
        if samples < 0:
            self.errors += 1
            return b""
        return ctypes.string_at(self._out, samples * 2)

    def reset(self) -> None:
        """A new stream (SSRC) or a jump: start from a fresh decoder state."""
        if self._state is not None:
            self._lib.opus_decoder_destroy(self._state)
            self._state = self._create()

    def close(self) -> None:
        if self._state is not None:
            self._lib.opus_decoder_destroy(self._state)
            self._state = None
        # Overwrite the last decoded audio: nothing of it outlives the stream.
        ctypes.memset(self._out, 0, len(self._out))

    def __del__(self) -> None:
        if getattr(self, "_state", None) is not None:
            self.close()
