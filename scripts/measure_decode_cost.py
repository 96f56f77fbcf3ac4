"""CPU per 20 ms Opus packet, alone on this machine: the numbers behind the speech path.

aiortc's way (PyAV libopus → 48 kHz stereo, then a thread hop onto the event loop per frame)
against qualmon's (libopus at 16 kHz mono through ctypes, then webrtcvad). Run:
    .venv/bin/python scripts/measure_decode_cost.py
Process CPU time, best of 3 runs over 5 s of speech-like audio.
"""

from __future__ import annotations

import asyncio
import fractions
import threading
import time
from collections.abc import Callable

import av
import webrtcvad
from av.packet import Packet

from qualmon.media.opus import OpusDecoder16k
from qualmon.sim.audio import speech_like_packets

PACKETS = speech_like_packets(5.0)


def per_packet_us(run: Callable[[], None], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        run()
        best = min(best, (time.process_time() - started) / len(PACKETS) * 1e6)
    return best


def pyav_decode(layout: str) -> Callable[[], None]:
    decoder = av.CodecContext.create("libopus", "r")
    decoder.format, decoder.layout, decoder.sample_rate = "s16", layout, 48000

    def run() -> None:
        for i, payload in enumerate(PACKETS):
            packet = Packet(payload)
            packet.pts, packet.time_base = i * 960, fractions.Fraction(1, 48000)
            decoder.decode(packet)

    return run


def libopus_16k(with_vad: bool) -> Callable[[], None]:
    decoder, vad = OpusDecoder16k(), webrtcvad.Vad(2)

    def run() -> None:
        for payload in PACKETS:
            pcm = decoder.decode(payload)
            if with_vad:
                vad.is_speech(pcm, 16000)

    return run


async def thread_hop_us() -> float:
    """aiortc's decoder thread hands each frame over with run_coroutine_threadsafe."""
    loop, queue = asyncio.get_running_loop(), asyncio.Queue[int]()

    def worker() -> None:
        for i in range(len(PACKETS)):
            asyncio.run_coroutine_threadsafe(queue.put(i), loop)

    started = time.process_time()
    thread = threading.Thread(target=worker)
    thread.start()
    for _ in PACKETS:
        await queue.get()
    thread.join()
    return (time.process_time() - started) / len(PACKETS) * 1e6


def main() -> None:
    print(f"{len(PACKETS)} packets of 20 ms; CPU µs per packet (best of 3)")
    print(f"PyAV libopus → 48 kHz stereo (aiortc)   {per_packet_us(pyav_decode('stereo')):6.1f}")
    print(f"thread hop onto the event loop (aiortc) {asyncio.run(thread_hop_us()):6.1f}")
    print(f"libopus → 16 kHz mono (qualmon)         {per_packet_us(libopus_16k(False)):6.1f}")
    print(f"  + webrtcvad on the 20 ms              {per_packet_us(libopus_16k(True)):6.1f}")


if __name__ == "__main__":
    main()
