"""`qualmon publish`: send an audio file (or speech-like audio) to a WHIP endpoint."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import av

from ..media.ice import use_host_addresses
from .audio import packets_from_file, speech_like_packets
from .impairment import ImpairmentConfig
from .publisher import WhipError, WhipPublisher

PROGRESS_SECONDS = 5.0


class UsageError(ValueError):
    """A flag or input file is unusable; the message says which and why."""


def _fail(message: str) -> None:
    print(f"qualmon publish: {message}", file=sys.stderr, flush=True)


def impairment_from(args: argparse.Namespace) -> ImpairmentConfig | None:
    """The requested impairment, or None when every impairment flag is zero."""
    if not 0.0 <= args.loss <= 1.0:
        raise UsageError(f"--loss is a ratio within 0..1 (0.05 is 5 %), got {args.loss:g}")
    if args.delay_ms < 0 or args.jitter_ms < 0:
        raise UsageError("--delay-ms and --jitter-ms must not be negative")
    if not (args.loss or args.delay_ms or args.jitter_ms):
        return None
    return ImpairmentConfig(
        loss_ratio=args.loss,
        delay_seconds=args.delay_ms / 1000,
        jitter_seconds=args.jitter_ms / 1000,
        keep_records=False,
    )


def ice_addresses_from(raw: str | None) -> tuple[str, ...] | None:
    if not raw:
        return None
    addresses = tuple(a.strip() for a in raw.split(",") if a.strip())
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise UsageError(f"--ice-addresses: {address!r} is not an IP address") from None
    return addresses or None


def packets_from(wav: str | None) -> list[bytes]:
    """Opus packets of `wav`, or of the built-in speech-like signal when None."""
    if wav is None:
        return speech_like_packets()
    path = Path(wav)
    if not path.is_file():
        raise UsageError(f"--wav {wav}: no such file")
    try:
        return packets_from_file(path)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise UsageError(f"--wav {wav}: cannot decode audio ({exc})") from None


def check_args(args: argparse.Namespace) -> None:
    url = urlsplit(args.url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise UsageError(f"--url must be an http(s) WHIP endpoint, got {args.url!r}")
    if not args.token.strip():
        raise UsageError("--token is empty")
    if args.seconds is not None and args.seconds <= 0:
        raise UsageError("--seconds must be positive")


async def run_publish(args: argparse.Namespace) -> int:
    """Publish until --seconds or Ctrl-C, then DELETE; 2 for bad input, 1 if refused."""
    try:
        check_args(args)
        impairment = impairment_from(args)
        ice_addresses = ice_addresses_from(args.ice_addresses)
        packets = packets_from(args.wav)
    except UsageError as exc:
        _fail(str(exc))
        return 2
    if ice_addresses is not None:
        use_host_addresses(ice_addresses)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = (signal.SIGINT, signal.SIGTERM)
    for signum in handled:
        loop.add_signal_handler(signum, stop.set)
    publisher = WhipPublisher(
        url=args.url, token=args.token.strip(), packets=packets, impairment=impairment
    )
    try:
        return await _publish(publisher, args, stop)
    finally:
        await publisher.stop()  # DELETE if a resource was created; closes the peer
        for signum in handled:
            loop.remove_signal_handler(signum)


async def _publish(publisher: WhipPublisher, args: argparse.Namespace, stop: asyncio.Event) -> int:
    source = args.wav or "speech-like audio"
    print(f"connecting to {args.url} …", flush=True)
    starting = asyncio.create_task(publisher.start())
    stopping = asyncio.create_task(stop.wait())
    try:
        # Ctrl-C must work while ICE is still connecting, too.
        await asyncio.wait((starting, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, WhipError, aiohttp.ClientError):
            await starting
        print("stopped before connecting", flush=True)
        return 0
    try:
        starting.result()
    except WhipError as exc:
        if exc.status is not None:
            _fail(f"refused: {exc}")
        else:
            hint = (
                ""
                if args.ice_addresses
                else " (server on this host? try --ice-addresses 127.0.0.1)"
            )
            _fail(f"{exc}{hint}")
        return 1
    except aiohttp.ClientError as exc:
        _fail(f"cannot reach {args.url}: {exc}")
        return 1
    print(f"connected; publishing {source} (looped)", flush=True)
    print(f"resource: {publisher.resource_url}", flush=True)
    if publisher.impairment is not None:
        cfg = publisher.impairment.config
        print(
            f"impairment: loss {cfg.loss_ratio:.1%}, delay {cfg.delay_seconds * 1000:g} ms, "
            f"jitter ±{cfg.jitter_seconds * 1000:g} ms",
            flush=True,
        )
    return await _progress(publisher, args.seconds, stop)


async def _progress(publisher: WhipPublisher, seconds: float | None, stop: asyncio.Event) -> int:
    """Report every few seconds until `seconds` pass, `stop` is set or the peer goes away."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = None if seconds is None else started + seconds
    next_report = started + PROGRESS_SECONDS
    while not stop.is_set():
        now = loop.time()
        if deadline is not None and now >= deadline:
            break
        if publisher.pc.connectionState in ("failed", "closed"):
            _fail(f"connection {publisher.pc.connectionState}")
            return 1
        if now >= next_report:
            print(f"{now - started:5.0f} s  {await _counts(publisher)}", flush=True)
            next_report += PROGRESS_SECONDS
        wake = min(next_report, deadline if deadline is not None else next_report)
        # Short naps keep Ctrl-C and a lost connection noticed within a second.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(1.0, max(0.0, wake - loop.time())))
    print(f"stopping after {loop.time() - started:.1f} s: {await _counts(publisher)}", flush=True)
    return 0


async def _counts(publisher: WhipPublisher) -> str:
    if publisher.impairment is not None:
        sent, dropped = publisher.impairment.packets_sent, publisher.impairment.packets_dropped
        share = dropped / sent if sent else 0.0
        return f"{sent} packets sent, {dropped} dropped ({share:.1%})"
    report = await publisher.pc.getStats()
    sent = sum(getattr(s, "packetsSent", 0) for s in report.values() if s.type == "outbound-rtp")
    return f"{sent} packets sent"
