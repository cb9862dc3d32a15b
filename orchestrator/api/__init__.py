"""lrun's HTTP faces and the life of `lrun serve`.

Owns: Lambda's API as boto3 and the AWS CLI speak it (``lambda_api``), lrun's own routes for
asynchronous events and local queues (``event_api``, ``queue_api``), the client other commands
use to reach a running server (``client``, stdlib only so it stays fast), and the server's life:
start, clean up after a crashed predecessor, serve, see edits (``edits``), shut down
(``server``).
May import: everything below it (``service``, ``pool``, ``events``, ``sandbox``, ``manifest``,
the leaves); never ``cli``. Only ``server`` wires the parts together.
"""
