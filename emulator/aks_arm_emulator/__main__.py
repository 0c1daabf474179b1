"""`aks-arm-emulator --config FILE [--host H] [--port N] [--tls --state-dir DIR]`.

Prints the base URL as the first stdout line, then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from .app import create_app
from .certs import server_ssl_context, write_serving_files
from .config import ConfigError, EmulatorConfig, load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aks-arm-emulator",
        description="Local emulator of the AKS runCommand ARM API and a minimal Entra ID sign-in.",
    )
    parser.add_argument("--config", required=True, type=Path, help="YAML configuration file")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", default=0, type=int, help="port to bind; 0 picks a free one")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS from a generated CA")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where --tls writes ca.crt and the server key, and accepted commands are "
        "journalled so that a restart on the same directory still answers for them",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tls and args.state_dir is None:
        parser.error("--tls needs --state-dir")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    return args


def _url_host(host: str) -> str:
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            return f"[{host}]"
    except ValueError:
        pass
    return host


async def serve(config: EmulatorConfig, args: argparse.Namespace) -> None:
    ssl_context = None
    if args.tls:
        files = write_serving_files(args.state_dir, args.host)
        ssl_context = server_ssl_context(files)
    runner = web.AppRunner(
        create_app(config, args.state_dir), access_log=None, handle_signals=False
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port, ssl_context=ssl_context)
        await site.start()
        port = runner.addresses[0][1]
        scheme = "https" if args.tls else "http"
        sys.stdout.write(f"{scheme}://{_url_host(args.host)}:{port}\n")
        sys.stdout.flush()

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"aks-arm-emulator: invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(config, args))
    except OSError as exc:
        print(f"aks-arm-emulator: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
