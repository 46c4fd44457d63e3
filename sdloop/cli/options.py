"""Option values checked where they are parsed, before any work starts.

Each function is an ``argparse`` ``type=``: a bad value ends in argparse's usage line and
exit status 2 (``sdloop simulate: error: argument --final-time: 'inf' is not a finite number``).
``check_scheduler`` checks that a dask scheduler answers, within ``SCHEDULER_TIMEOUT`` seconds.
"""

from __future__ import annotations

import argparse
import math
import re
import socket
from urllib.parse import urlsplit

from sdloop.errors import OverrideError

SCHEDULER_TIMEOUT = 5.0  # seconds to wait for a dask scheduler to answer before giving up
SEED_MAX = 2**32 - 1


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """A whole number of at least 1 (counts of draws, workers, threads, chunks)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def nonnegative_int(text: str) -> int:
    """A whole number of at least 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be 0 or more")
    return value


def seed(text: str) -> int:
    """A random seed: a whole number from 0 to 2**32 - 1."""
    value = _int(text)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{text!r}: a seed is a whole number from 0 to {SEED_MAX}")
    return value


def finite_float(text: str) -> float:
    """A finite number (not inf, not nan)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def nonnegative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be 0 or more")
    return value


def name_list(text: str) -> str:
    """A comma-separated list of names: none empty, none twice (returned as given)."""
    names = [n.strip() for n in text.split(",")]
    if not any(names):
        raise argparse.ArgumentTypeError("an empty list (give one or more names separated by commas)")
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty name (two commas in a row, or one at an end)")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{', '.join(repr(n) for n in twice)} given twice")
    return text


def int_list(text: str) -> tuple[int, ...]:
    """A comma-separated list of whole numbers of at least 1 (``--sizes 1,1000``)."""
    name_list(text)
    return tuple(positive_int(n.strip()) for n in text.split(","))


def scheduler_address(text: str) -> str:
    """A dask scheduler address ``tcp://HOST:PORT`` (or ``HOST:PORT``)."""
    host, port = _host_port(text)
    if host is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a scheduler address (expected tcp://HOST:PORT)")
    return text


def _host_port(text: str) -> tuple[str | None, int | None]:
    address = text.strip()
    if "://" not in address:
        address = "tcp://" + address
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError:
        return None, None
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None or parts.path not in ("", "/"):
        return None, None
    if not re.fullmatch(r"[A-Za-z0-9_.:\-\[\]]+", parts.hostname):
        return None, None
    return parts.hostname, port


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """OverrideError unless something accepts connections at ``address`` within ``timeout`` seconds."""
    host, port = _host_port(address)
    if host is None:
        raise OverrideError(f"{address!r} is not a scheduler address (expected tcp://HOST:PORT)",
                            variable="--scheduler")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, (socket.timeout, TimeoutError)) else (exc.strerror or str(exc))
        raise _no_scheduler(address, timeout, reason) from None
    reason = _dask_handshake(address, timeout)
    if reason:
        raise _no_scheduler(address, timeout, reason)


def _no_scheduler(address: str, timeout: float, reason: str) -> OverrideError:
    return OverrideError(f"no dask scheduler answers at {address} within {timeout:g} s ({reason}); "
                         "start one with 'dask scheduler' or leave --scheduler out", variable="--scheduler")


def _dask_handshake(address: str, timeout: float) -> str | None:
    """Why ``address`` does not answer dask's ``identity`` call as a scheduler (None when it does).

    A bare comm rather than a ``Client``: a client that failed to connect complains again when it
    is garbage-collected. dask's own logging is silenced meanwhile.
    """
    import asyncio
    import logging

    from distributed.comm import connect

    async def identity() -> dict:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        reply = asyncio.run(asyncio.wait_for(identity(), timeout))
    except (Exception, MemoryError) as exc:  # whatever answers there is not a dask scheduler
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0][:120]}" if text else f"{type(exc).__name__}"
    finally:
        logger.setLevel(level)
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        return "what answers is not a dask scheduler"
    return None
