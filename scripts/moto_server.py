#!/usr/bin/env python3
"""The AWS API emulator (moto_server) as the tests use it: DynamoDB requests one at a time.

moto_server handles requests on threads, and its DynamoDB model checks a condition and applies
an update without a lock, so two concurrent conditional writes to one item can both succeed —
something DynamoDB itself never allows (conditional writes are atomic per item). Serializing
the DynamoDB requests restores that guarantee; every other service (SQS long polls included)
still runs concurrently.

    python3 scripts/moto_server.py -H 127.0.0.1 -p 5055
"""

import argparse
import os
import signal
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app


class SerializedDynamoDB:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with self.lock:
                # Consume the whole response inside the lock: the write happens while it is made.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=5055)
    args = ap.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, SerializedDynamoDB(app), threaded=True)


if __name__ == "__main__":
    main()
