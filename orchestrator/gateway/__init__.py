"""API Gateway in front of the functions: HTTP APIs (payload 2.0) and REST APIs (payload 1.0).

Owns: request and response values (``exchange``), route matching and precedence (``routes``), the
event and response mappings of payload format 2.0 (``payload_v2``) and 1.0 (``payload_v1``), API
Gateway's own answers (``answers``), authorizers (``authorizers``, with IAM policies in
``policy`` and JWTs in ``jwt``), CORS (``cors``), and the listeners `lrun serve` starts, one port
per API (``listener``, ``listeners``), which invoke through the same service and pools as the
Lambda API.
The mapping modules are pure (values in, values out) so function URLs reuse ``payload_v2``.
May import: ``service``, ``pool``, ``sandbox``, ``manifest`` and the leaves; never ``api`` or
``cli`` (``api`` starts the listeners and gives them its Host check).
"""
