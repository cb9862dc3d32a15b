"""Reading a function's ``url:`` (orchestrator.manifest.urls), and checking its port against the
other ports the manifest names."""

from __future__ import annotations

from typing import cast

import yaml

from orchestrator.errors import show as _show
from orchestrator.manifest.api_reader import read_cors
from orchestrator.manifest.reader import Reader
from orchestrator.manifest.urls import AUTH_TYPES, INVOKE_MODES, AuthType, InvokeMode, UrlSpec

URL_KEYS = frozenset({"auth", "cors", "invoke_mode", "port"})
EXAMPLE = "url: {auth: NONE}"


def read_url(self: Reader, function: str) -> None:
    """A function's ``url:``, kept in ``self.urls``."""
    if (got := self.get("url")) is None:
        return
    node, value, where = got
    if not isinstance(node, yaml.MappingNode):
        self.add(
            node, where, f"{_show(value)} is not a function URL's settings; write e.g. {EXAMPLE}"
        )
        return
    with self.section(node, where, URL_KEYS) as ok:
        if not ok:
            return
        auth = self.choice("auth", AUTH_TYPES)
        mode = self.choice("invoke_mode", INVOKE_MODES) or "BUFFERED"
        port = self.integer("port", 1, 65535, "", None)
        cors = read_cors(self, where)
        if "auth" not in self.fields:
            fix = (
                "set auth: NONE (anyone may call it) or auth: AWS_IAM (signed requests), "
                f"e.g. {EXAMPLE}"
            )
            self.add(node, where, f"auth is missing; {fix}")
        if port is not None:
            self.url_ports.append((self.fields["port"][1], f"{where}.port", port))
        if auth is not None:
            self.urls[function] = UrlSpec(cast(AuthType, auth), cors, cast(InvokeMode, mode), port)


def check_url_ports(self: Reader) -> None:
    """No two function URLs, nor a URL and an API, may ask for the same port."""
    taken = {api.port: f"API {name!r}" for name, api in self.apis.items() if api.port is not None}
    for node, where, port in self.url_ports:
        if port in taken:
            fix = "give each function URL a port of its own (or none: lrun picks a free one)"
            self.add(node, where, f"port {port} is taken by {taken[port]}; {fix}")
        else:
            taken[port] = f"the function URL at {where.rsplit('.', 2)[0]}"
