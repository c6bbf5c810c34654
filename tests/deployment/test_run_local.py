"""`make up` prints a Prometheus UI address that answers, whichever Prometheus build it runs."""

from __future__ import annotations

import http.server
import threading

import pytest

from tools.run_local import prometheus_ui_url

DEBIAN, RELEASE = ("/classic/graph", "/classic/targets"), ("/query", "/targets")


@pytest.mark.parametrize(("root_redirect", "expected"), [DEBIAN, RELEASE])
def test_the_targets_page_is_found_where_the_root_redirects(root_redirect, expected):
    class Root(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", root_redirect)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Root)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert prometheus_ui_url("targets", port) == f"http://127.0.0.1:{port}{expected}"
    finally:
        server.shutdown()
        server.server_close()
