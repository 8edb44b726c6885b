"""moto's S3 (and SQS) API served over HTTP with keep-alive: `python -m agent.lab.moto_process PORT`.

moto's own server (werkzeug's development server) closes the connection after every response, so
each request pays for a new TCP connection on both sides; S3 keeps connections alive. The same moto
application, served by waitress, behaves like S3 in that, and costs the lab's CPU less per request.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import waitress
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from agent.lab.server import LOOPBACK


def raw_uri(application: Callable[[dict[str, Any], Any], Any]) -> Callable[[dict[str, Any], Any], Any]:
    """Give moto the request's path as it arrived (RAW_URI, as werkzeug names it; waitress calls it
    REQUEST_URI): moto matches S3 keys and checks signatures on the encoded form."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        environ.setdefault("RAW_URI", environ.get("REQUEST_URI", ""))
        return application(environ, start_response)

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    application = raw_uri(DomainDispatcherApplication(create_backend_app))
    waitress.serve(application, host=args.host, port=args.port, threads=args.threads, _quiet=True)


if __name__ == "__main__":
    main()
