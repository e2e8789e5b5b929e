#!/usr/bin/env python3
"""A local Lambda Runtime API for smoke tests: runs one function process, hands it the given
events in order, prints each answer as a JSON line, and stops the function after the last.

    runtime_api.py EVENTS.json -- COMMAND [ARG...]

EVENTS.json holds a JSON list of events. The function inherits this process's environment,
plus AWS_LAMBDA_RUNTIME_API and the usual function variables. Exits 1 if the function dies,
reports an error, or does not answer within 60 s per event.
"""
import http.server
import json
import os
import queue
import subprocess
import sys
import threading
import time

TIMEOUT_S = 60


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        events = json.load(f)
    pending = queue.Queue()
    for number, event in enumerate(events):
        pending.put((f"smoke-{number}", event))
    answers = queue.Queue()

    class RuntimeApi(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def reply(self, status, body=b"", headers=()):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if not self.path.endswith("/runtime/invocation/next"):
                return self.reply(404)
            request_id, event = pending.get()  # blocks after the last event, as Lambda does
            deadline = int(time.time() * 1000) + TIMEOUT_S * 1000
            self.reply(200, json.dumps(event).encode(), [
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                ("Lambda-Runtime-Invoked-Function-Arn",
                 "arn:aws:lambda:us-east-1:000000000000:function:smoke"),
            ])

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.reply(202)
            if self.path.endswith("/response"):
                answers.put(("answer", body.decode("utf-8", "replace")))
            else:  # .../error or /runtime/init/error
                answers.put(("error", body.decode("utf-8", "replace")))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(
        os.environ,
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
        AWS_LAMBDA_FUNCTION_NAME="smoke",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
    )
    function = subprocess.Popen(sys.argv[3:], env=env, stdout=subprocess.DEVNULL)
    status = 0
    try:
        for _ in events:
            kind, body = next_answer(answers, function)
            if kind is None:
                return 1
            if kind == "error":
                print(f"the function reported an error: {body}", file=sys.stderr)
                status = 1
            print(body, flush=True)
    finally:
        function.kill()
        function.wait()
        server.shutdown()
    return status


def next_answer(answers, function):
    """The next answer, or (None, None) when the function exits or takes too long."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            return answers.get(timeout=0.2)
        except queue.Empty:
            if function.poll() is not None:
                print(f"the function exited with {function.returncode}", file=sys.stderr)
                return None, None
    print(f"no answer within {TIMEOUT_S} s", file=sys.stderr)
    return None, None


if __name__ == "__main__":
    sys.exit(main())
