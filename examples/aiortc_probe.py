"""An aiortc app measuring what it hears with qualmon.probe.Probe.

The "call" here is two peer connections on loopback, one sending speech-like audio; in a
real app `pc` is your own RTCPeerConnection and `track` the remote audio track you get in
its "track" event. Run from the repository:

    .venv/bin/python examples/aiortc_probe.py                      # print snapshots
    .venv/bin/python examples/aiortc_probe.py --metrics-port 9105  # and serve /metrics
    .venv/bin/python examples/aiortc_probe.py --url http://127.0.0.1:8080 \\
        --token "$(qualmon token --scope publish --session S1 --role client)"  # and post
"""

from __future__ import annotations

import argparse
import asyncio

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack
from prometheus_client import CollectorRegistry, start_http_server

from qualmon.media.ice import use_host_addresses
from qualmon.probe import Probe, ProbeSnapshot
from qualmon.sim.audio import EncodedAudioTrack, speech_like_packets


def show(snapshot: ProbeSnapshot) -> None:
    rtt = f"{snapshot.rtt_seconds * 1000:.1f} ms" if snapshot.rtt_seconds is not None else "–"
    print(
        f"packets {snapshot.packets_received} lost {snapshot.packets_lost} "
        f"jitter {snapshot.jitter_seconds * 1000:.1f} ms rtt {rtt} "
        f"mos {snapshot.mos or 0:.2f} speech {snapshot.speech_seconds or 0:.1f} s"
    )


async def main(args: argparse.Namespace) -> None:
    use_host_addresses(["127.0.0.1"])  # loopback only, for this demonstration
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # your app's connection
    tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
    pc.on("track", tracks.put_nowait)
    sender.addTransceiver(EncodedAudioTrack(speech_like_packets()), direction="sendonly")
    await sender.setLocalDescription(await sender.createOffer())
    await pc.setRemoteDescription(sender.localDescription)
    await pc.setLocalDescription(await pc.createAnswer())
    await sender.setRemoteDescription(pc.localDescription)
    track = await tracks.get()

    registry = None
    if args.metrics_port:
        registry = CollectorRegistry()
        start_http_server(args.metrics_port, registry=registry)
    probe = Probe(
        pc,
        url=args.url,
        token=args.token,
        on_sample=show,
        registry=registry,
        track=track,  # the probe consumes it; use MediaRelay if your app plays it too
    )
    await probe.start()
    try:
        await asyncio.sleep(args.seconds)
    finally:
        await probe.stop()
        await pc.close()
        await sender.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="qualmon service base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--token", help="publish token for the session and role")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve /metrics on it")
    parser.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(main(parser.parse_args()))
